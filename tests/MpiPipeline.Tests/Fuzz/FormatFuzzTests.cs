using System.Buffers.Binary;
using CsCheck;
using MpiPipeline.Data;
using MpiPipeline.TestData;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Fuzz;

/// <summary>
/// Bounded fuzzing of the formats users bring (issue 21's): model files (`--model spec:FILE`) from their own grammar's
/// tokens glued at random, and the data sets `--dataset idx:`, `cifar10:` and `npy:` from valid small files mutated
/// (truncated, bytes flipped, a header word replaced by a size up to 2^31 - 1). As in <see cref="InputFuzzTests"/>:
/// any input either loads, consistently, or is an <see cref="InputException"/> that names the file or folder; nothing
/// else escapes. A crash found becomes a literal regression case here.
/// </summary>
[TestFixture]
[Category("Fuzz")]
internal sealed class FormatFuzzTests : FuzzFixture
{
    // 4 properties of Seconds each: about 12 s of `make test`.

    /// <summary>The model-file grammar's pieces: every kind, numbers at and beyond limits, braces, comments, line breaks.</summary>
    private static readonly string[] ModelTokens =
    [
        .. ModelFile.KnownKinds, "residual", "shortcut", "{", "}", "} shortcut {", "#", "\n", "\r\n", " ", "\t",
        "0", "1", "2", "3", "16", "28", "784", "-1", "2147483647", "2147483648", "9223372036854775808", "1.5", "x", ":", "\0",
    ];

    [Test]
    public void ModelFiles() =>
        Gen.OneOf(ModelTokens).Array[0, 40].Select(parts => string.Join(' ', parts)).Sample(
            text =>
            {
                try
                {
                    var layers = ModelFile.Parse(text, "m.txt");
                    Assert.That(layers, Is.Not.Null);
                }
                catch (InputException e)
                {
                    Assert.That(e.Message, Does.Contain("m.txt"), $"model file:\n{text}");
                }
            },
            time: Seconds);

    /// <summary>A data file's mutation: truncated, a byte flipped or a header word replaced (either byte order), not wrapped.</summary>
    private static readonly Gen<Func<byte[], byte[]>> Mutation = FileMutations.Mutation(FileMutations.Words.AnyInFirst64Bytes, gzip: false);

    /// <summary>Loads the training and test parts of <paramref name="spec"/>; a load is consistent, a refusal names the folder.</summary>
    private static void LoadsOrNamesTheFolder(string spec, string folder)
    {
        foreach (var train in new[] { true, false })
        {
            LoadsOrNames(folder, () =>
            {
                var set = DataSetRegistry.Load(spec, null, train);
                Assert.That(set.Count, Is.GreaterThan(0));
                Assert.That(set.Classes, Is.GreaterThan(0));
            }, spec);
        }
    }

    [Test]
    public void IdxSets() =>
        Gen.Select(Gen.Int[0, 3], Mutation, Gen.Bool).Sample(
            (which, mutation, floats) =>
            {
                var folder = FreshFolder("idx");
                var (pixels, labels) = ImageSetFiles.Generate(6, 2, 4, 3, seed: 1);
                var images = floats ? ImageSetFiles.IdxFloats([6, 2, 4, 4], [.. pixels.Select(p => p / 255f)]) : ImageSetFiles.Idx([6, 2, 4, 4], pixels);
                var files = new[]
                {
                    ("train-images-idx4-ubyte", images), ("train-labels-idx1-ubyte", ImageSetFiles.Idx([6], labels)),
                    ("t10k-images-idx4-ubyte", images), ("t10k-labels-idx1-ubyte", ImageSetFiles.Idx([6], labels)),
                };
                for (var f = 0; f < files.Length; f++)
                {
                    File.WriteAllBytes(Path.Combine(folder, files[f].Item1), f == which ? mutation(files[f].Item2) : files[f].Item2);
                }

                LoadsOrNamesTheFolder("idx:" + folder, folder);
            },
            time: Seconds, threads: 1);

    [Test]
    public void CifarSets() =>
        Gen.Select(Gen.Int[0, 1], Mutation).Sample(
            (which, mutation) =>
            {
                var folder = FreshFolder("cifar");
                var (pixels, labels) = ImageSetFiles.Generate(4, 3, 32, 10, seed: 2);
                var records = ImageSetFiles.CifarRecords(pixels, labels);
                File.WriteAllBytes(Path.Combine(folder, "data_batch_1.bin"), which == 0 ? mutation(records) : records);
                File.WriteAllBytes(Path.Combine(folder, "test_batch.bin"), which == 1 ? mutation(records) : records);
                LoadsOrNamesTheFolder("cifar10:" + folder, folder);
            },
            time: Seconds, threads: 1);

    [Test]
    public void NpySets() =>
        Gen.Select(Gen.Int[0, 3], Mutation, Gen.OneOf("<f4", "|u1", "<f8")).Sample(
            (which, mutation, descr) =>
            {
                var folder = FreshFolder("npy");
                var (pixels, labels) = ImageSetFiles.Generate(5, 1, 4, 3, seed: 3);
                var x = descr switch
                {
                    "|u1" => NpyFile.Encode(descr, [5, 1, 4, 4], pixels),
                    "<f4" => NpyFile.Encode(descr, [5, 1, 4, 4], FloatBytes(pixels)),
                    _ => NpyFile.Encode([5, 1, 4, 4], [.. pixels.Select(p => (double)p)]),
                };
                var y = NpyFile.Encode("<i8", [5], LongBytes(labels));
                var files = new[] { ("x_train.npy", x), ("y_train.npy", y), ("x_test.npy", x), ("y_test.npy", y) };
                for (var f = 0; f < files.Length; f++)
                {
                    File.WriteAllBytes(Path.Combine(folder, files[f].Item1), f == which ? mutation(files[f].Item2) : files[f].Item2);
                }

                LoadsOrNamesTheFolder("npy:" + folder, folder);
            },
            time: Seconds, threads: 1);

    private static byte[] FloatBytes(byte[] pixels)
    {
        var bytes = new byte[pixels.Length * 4];
        for (var i = 0; i < pixels.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), pixels[i] / 255f);
        }

        return bytes;
    }

    private static byte[] LongBytes(byte[] labels)
    {
        var bytes = new byte[labels.Length * 8];
        for (var i = 0; i < labels.Length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), labels[i]);
        }

        return bytes;
    }
}
