using System.Globalization;
using System.Text.RegularExpressions;

namespace MpiPipeline.Data;

/// <summary>
/// CIFAR-10 and CIFAR-100 (Krizhevsky 2009) in their binary version (https://www.cs.toronto.edu/~kriz/cifar.html):
/// 3x32x32 colour images in records of label byte(s) then 3072 pixel bytes (the red plane, the green, the blue, each
/// row after row). CIFAR-10 (<c>cifar10:DIR</c>): one label byte (0..9) per record, training files
/// <c>data_batch_1.bin</c> .. <c>data_batch_5.bin</c>, test file <c>test_batch.bin</c>. CIFAR-100: two label bytes,
/// the coarse (20 superclasses) then the fine (100 classes), in <c>train.bin</c> and <c>test.bin</c>;
/// <c>cifar100:DIR</c> trains on the fine label, <c>cifar100-coarse:DIR</c> on the coarse one. DIR is the folder of the
/// files or the one the archive was unpacked in (holding cifar-10-batches-bin or cifar-100-binary). No header: a file
/// must be a whole number of records, and every label in range.
/// </summary>
internal static partial class CifarBinary
{
    public const int Channels = 3, Side = 32, ImageBytes = Channels * Side * Side;

    /// <summary>Where the binary archives come from (the README says the same).</summary>
    public const string Website = "https://www.cs.toronto.edu/~kriz/cifar.html";

    private sealed record Format(string Kind, string Form, string Subfolder, int LabelBytes, int LabelOffset, int Classes, bool Cifar10);

    private static readonly Format Cifar10 = new("CIFAR-10", "cifar10:DIR", "cifar-10-batches-bin", 1, 0, 10, true);
    private static readonly Format Cifar100 = new("CIFAR-100", "cifar100:DIR", "cifar-100-binary", 2, 1, 100, false);
    private static readonly Format Cifar100Coarse = new("CIFAR-100 (coarse labels)", "cifar100-coarse:DIR", "cifar-100-binary", 2, 0, 20, false);

    public static DataSetRegistration Cifar10Registration { get; } = Registration(Cifar10,
        "CIFAR-10 binary version in DIR: data_batch_*.bin (training) and test_batch.bin, 3x32x32 in 10 classes");

    public static DataSetRegistration Cifar100Registration { get; } = Registration(Cifar100,
        "CIFAR-100 binary version in DIR: train.bin and test.bin, 3x32x32, the fine label (100 classes)");

    public static DataSetRegistration Cifar100CoarseRegistration { get; } = Registration(Cifar100Coarse,
        "CIFAR-100 binary version in DIR, the coarse label (20 superclasses)");

    private static DataSetRegistration Registration(Format format, string help) =>
        new(format.Form, $"{help}; from {Website}", (name, _, train) => Load(format, name, train));

    private static Dataset Load(Format format, string name, bool train)
    {
        var folder = FileDataSet.Folder(name, format.Form);
        if (Directory.Exists(Path.Combine(folder, format.Subfolder)))
        {
            folder = Path.Combine(folder, format.Subfolder);
        }

        return FileDataSet.Load(format.Kind, train, part => Read(format, folder, part), format.Classes);
    }

    private static RawPart Read(Format format, string folder, bool train)
    {
        var files = Files(format, folder, train);
        var recordBytes = format.LabelBytes + ImageBytes;
        var contents = files.Select(IdxReader.ReadDecompressed).ToList();
        for (var f = 0; f < files.Count; f++)
        {
            if (contents[f].Length % recordBytes != 0 || contents[f].Length == 0)
            {
                throw new InputException($"{files[f]}: {contents[f].Length} bytes is not a whole number of {format.Kind} records of {recordBytes} bytes " +
                    $"({format.LabelBytes} label byte(s) + {ImageBytes} pixel bytes): the file is truncated or not in the {format.Kind} binary format");
            }
        }

        var count = checked(contents.Sum(c => c.Length / recordBytes));
        var pixels = GC.AllocateUninitializedArray<byte>(checked(count * ImageBytes));
        var labels = new int[count];
        var sample = 0;
        for (var f = 0; f < files.Count; f++)
        {
            var span = contents[f].Span;
            for (var record = 0; record < span.Length / recordBytes; record++, sample++)
            {
                var bytes = span.Slice(record * recordBytes, recordBytes);
                // The range is checked here, not left to FileDataSet, so that the message names the file and the record in it.
                var label = bytes[format.LabelOffset];
                if (label >= format.Classes)
                {
                    throw new InputException($"{files[f]}: label {label} in record {record} is outside 0..{format.Classes - 1} " +
                        $"({format.Kind} has {format.Classes} classes): the file is corrupt or of another data set");
                }

                labels[sample] = label;
                bytes[format.LabelBytes..].CopyTo(pixels.AsSpan(sample * ImageBytes, ImageBytes));
            }
        }

        var source = files.Count == 1 ? files[0] : $"{files[0]} .. {Path.GetFileName(files[^1])}";
        return new RawPart(source, source, [Channels, Side, Side], count, pixels, null, labels);
    }

    /// <summary>The part's files: CIFAR-10's training batches in their number's order.</summary>
    private static List<string> Files(Format format, string folder, bool train)
    {
        if (format.Cifar10 && train)
        {
            var batches = Directory.EnumerateFiles(folder, "data_batch_*.bin")
                .Select(p => (Path: p, Match: BatchPattern().Match(Path.GetFileName(p))))
                .Where(b => b.Match.Success)
                .OrderBy(b => int.Parse(b.Match.Groups[1].Value, CultureInfo.InvariantCulture))
                .Select(b => b.Path)
                .ToList();
            return batches.Count > 0 ? batches
                : throw new InputException($"--dataset {format.Form}: no CIFAR-10 training batches (data_batch_1.bin ...) in {folder}; " +
                    $"unpack cifar-10-binary.tar.gz from {Website}");
        }

        var name = format.Cifar10 ? "test_batch.bin" : train ? "train.bin" : "test.bin";
        var path = Path.Combine(folder, name);
        return File.Exists(path) ? [path]
            : throw new InputException($"--dataset {format.Form}: no {name} in {folder}; unpack {(format.Cifar10 ? "cifar-10" : "cifar-100")}-binary.tar.gz from {Website}");
    }

    [GeneratedRegex(@"^data_batch_([0-9]{1,6})\.bin$")]
    private static partial Regex BatchPattern();
}
