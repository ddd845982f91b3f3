using System.Buffers.Binary;
using System.CommandLine;
using CsCheck;
using MpiPipeline.Cli;
using MpiPipeline.Cli.Verbs;
using MpiPipeline.Data;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Scaling;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Fuzz;

/// <summary>
/// Bounded fuzzing of everything that reads user input: the IDX reader (mutations of valid files: truncation, flipped
/// bytes, header dimensions up to 2^31 - 1, gzip wrapping and damaged gzip) and the text parsers of options (`train`'s
/// whole option table and its validation, model names with a geometry, data set, compressor and network specs) fed
/// with tokens of their own grammar glued at random. The property is the one users rely on: any input either works or
/// is an <see cref="InputException"/> with a message; nothing else escapes (no IndexOutOfRange, Overflow, NullReference,
/// OutOfMemory from a header's claimed size). CsCheck runs each property for a fixed time, shrinks a failure to a small
/// input and prints the seed that replays it: a crash found becomes a case of <see cref="Regressions"/>.
/// </summary>
[TestFixture]
[Category("Fuzz")]
internal sealed class InputFuzzTests : FuzzFixture
{
    // 7 properties of Seconds each: about 20 s of `make test` on 2 cores.

    /// <summary>Pieces of the option grammars: numbers at and beyond every limit, units, separators, names.</summary>
    private static readonly string[] Tokens =
    [
        "0", "1", "2", "3", "4", "7", "16", "28", "255", "256", "-1", "-0", "1.5", "0.5", "1e-9", "1e38", "1e39", "1e400",
        "NaN", "nan", "inf", "-inf", "Infinity", "2147483647", "2147483648", "-2147483649", "9223372036854775808", "0x10",
        "", " ", ":", "::", "x", "X", ",", ",,", ".", "-", "_", "%", "\u00e9", "\0", "\t",
        "mlp", "cnn", "deep-mlp", "res-mlp", "synthetic", "fashion-mnist", "none", "fp16", "qsgd", "ecq", "topk",
        "gbit", "mbit", "kbit", "tbit", "us", "ms", "s", "cpu", "cuda", "cuda:0", "auto", "psgd", "local-sgd", "ri-sgd",
        "pipeline", "gpipe", "1f1b", "sgd", "adam", "stop", "skip-step", "epoch", "@", "@/", "@/proc", "@/nonexistent",
    ];

    private static readonly Gen<string> Spec = Gen.OneOf(
        Gen.OneOf(Tokens).Array[0, 7].Select(parts => string.Concat(parts)),
        Gen.String[0, 24]);

    private static void OnlyInputErrors(Action action, string what)
    {
        try
        {
            action();
        }
        catch (InputException e)
        {
            Assert.That(e.Message, Is.Not.Empty, $"{what}: an input error without a message");
        }
    }

    [Test]
    public void ModelNamesWithAnyGeometry() =>
        Gen.Select(Spec, Gen.Int[0, 5].SelectMany(rank => Gen.Int[-2, 70].Array[rank]), Gen.Int[-1, 300]).Sample(
            (name, shape, classes) => OnlyInputErrors(() => ModelZoo.Build(name, new SampleGeometry(shape, classes)), $"model '{name}'"),
            time: Seconds);

    [Test]
    public void DataSetCompressorAndNetworkSpecs() =>
        Spec.Sample(
            spec =>
            {
                OnlyInputErrors(() => DataSetRegistry.Find(spec), $"--dataset '{spec}'");
                OnlyInputErrors(() => SyntheticImages.Parse("synthetic:" + spec), $"--dataset 'synthetic:{spec}'");
                OnlyInputErrors(() => CompressorRegistry.Validate(spec), $"--compress '{spec}'");
                OnlyInputErrors(() => EmulatedNetwork.Parse(spec), $"--network '{spec}'");
            },
            time: Seconds);

    /// <summary>
    /// `train`'s whole table: random flags of the table with values from the grammar, parsed as System.CommandLine
    /// does (a parse error is the usage error path), then the options validated for 1 to 9 workers, as every rank does
    /// before any work.
    /// </summary>
    [Test]
    public void TrainOptions()
    {
        var flags = FlagsOf(TrainOptionTable.Create());
        Gen.Select(Gen.Select(Gen.OneOf(flags), Spec).Array[0, 6], Gen.Int[1, 9]).Sample(
            (pairs, workers) =>
            {
                var table = TrainOptionTable.Create();
                var command = new Command("train");
                table.AddTo(command);
                var args = pairs.SelectMany(p => new[] { p.Item1, p.Item2 }).ToArray();
                var parse = CommandLineParsing.Parse(command, args);
                if (parse.Errors.Count > 0)
                {
                    return;
                }

                OnlyInputErrors(() => table.Read(parse).Validate(workers), $"train {string.Join(' ', args)}");
            },
            time: Seconds);
    }

    /// <summary>Found by <see cref="TrainOptions"/>: System.CommandLine's response-file reader threw on a folder.</summary>
    [TestCase("@/proc")]
    [TestCase("@/")]
    [TestCase("@/nonexistent/file")]
    public void UnreadableResponseFileIsAUsageError(string token)
    {
        var command = new Command("train");
        TrainOptionTable.Create().AddTo(command);
        var parse = CommandLineParsing.Parse(command, ["--lr", token]);
        Assert.That(parse.Errors.Select(e => e.Message), Has.Some.Contains(token[1..]));
    }

    /// <summary>Found by <see cref="TrainOptions"/>: --compress's check read an --algo value the parser had refused.</summary>
    [TestCase("")]
    [TestCase("nope")]
    [TestCase("@/nonexistent")]
    public void CompressWithABadAlgorithmIsAUsageError(string algorithm)
    {
        var command = new Command("train");
        TrainOptionTable.Create().AddTo(command);
        var parse = CommandLineParsing.Parse(command, ["--algo", algorithm, "--compress", "fp16"]);
        Assert.That(parse.Errors, Is.Not.Empty);
    }

    private static string[] FlagsOf<TRecord>(OptionTable<TRecord> table)
        where TRecord : new()
    {
        var command = new Command("verb");
        table.AddTo(command);
        return [.. command.Options.Select(o => o.Name)];
    }

    /// <summary>A valid IDX file: magic, big-endian dimensions, then the data (labels 0-9 for an idx1 file).</summary>
    private static byte[] Idx(int magic, int[] dimensions, int dataBytes)
    {
        var file = new byte[4 + 4 * dimensions.Length + dataBytes];
        BinaryPrimitives.WriteInt32BigEndian(file, magic);
        for (var i = 0; i < dimensions.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(file.AsSpan(4 + 4 * i), dimensions[i]);
        }

        for (var i = 4 + 4 * dimensions.Length; i < file.Length; i++)
        {
            file[i] = (byte)(magic == IdxReader.LabelsMagic ? i % 10 : i * 37);
        }

        return file;
    }

    /// <summary>An IDX file's mutation: truncated, a byte flipped or a dimension replaced; then maybe gzip-wrapped (maybe damaged).</summary>
    private static readonly Gen<Func<byte[], byte[]>> Mutation = FileMutations.Mutation(FileMutations.Words.IdxDimensions, gzip: true);

    [Test]
    public void IdxImages() =>
        Gen.Select(Gen.Int[0, 5], Gen.Int[1, 6], Gen.Int[1, 6], Mutation.Array[1, 3]).Sample(
            (count, rows, columns, mutations) =>
            {
                var bytes = mutations.Aggregate(Idx(IdxReader.ImagesMagic, [count, rows, columns], count * rows * columns), (file, m) => m(file));
                var path = WriteFile(bytes);
                LoadsOrNames(path, () =>
                {
                    var images = IdxReader.ReadImages(path);
                    Assert.That(images.Pixels.Length, Is.EqualTo((long)images.Count * images.Rows * images.Columns));
                });
            },
            time: Seconds, threads: 1);

    [Test]
    public void IdxLabels() =>
        Gen.Select(Gen.Int[0, 40], Mutation.Array[1, 3]).Sample(
            (count, mutations) =>
            {
                var bytes = mutations.Aggregate(Idx(IdxReader.LabelsMagic, [count], count), (file, m) => m(file));
                var path = WriteFile(bytes);
                LoadsOrNames(path, () => Assert.That(IdxReader.ReadLabels(path), Is.Not.Null));
            },
            time: Seconds, threads: 1);

    /// <summary>A whole Fashion-MNIST folder with mutated files: images and labels must also agree with each other.</summary>
    [Test]
    public void DataFolder() =>
        Gen.Select(Gen.Int[0, 4], Gen.Int[0, 4], Mutation, Gen.Bool).Sample(
            (images, labels, mutation, mutateImages) =>
            {
                var folder = Path.Combine(Folder, "data");
                Directory.CreateDirectory(folder);
                var imageFile = Idx(IdxReader.ImagesMagic, [images, 28, 28], images * 28 * 28);
                var labelFile = Idx(IdxReader.LabelsMagic, [labels], labels);
                File.WriteAllBytes(Path.Combine(folder, "t10k-images-idx3-ubyte"), mutateImages ? mutation(imageFile) : imageFile);
                File.WriteAllBytes(Path.Combine(folder, "t10k-labels-idx1-ubyte"), mutateImages ? labelFile : mutation(labelFile));
                LoadsOrNames(folder, () =>
                {
                    var set = FashionMnist.Load(folder, train: false);
                    Assert.That(set.Count, Is.EqualTo(images).And.EqualTo(labels));
                });
            },
            time: Seconds, threads: 1);

    private string WriteFile(byte[] bytes)
    {
        var path = Path.Combine(Folder, "file.idx");
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
