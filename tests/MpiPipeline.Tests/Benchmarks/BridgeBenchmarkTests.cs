using System.Globalization;
using System.Text.RegularExpressions;
using MpiPipeline.Benchmarks;
using MpiPipeline.Data;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Benchmarks;

/// <summary>The pure parts of <c>bench bridge</c>: option checks, the data-order fingerprint, the raw line format.</summary>
[TestFixture]
public sealed class BridgeBenchmarkTests
{
    [Test]
    public void DefaultsAreValid() => Assert.That(new BridgeBenchmarkOptions().Problems(), Is.Empty);

    /// <summary>
    /// Every field of the C++ baseline's <c>struct Options</c>, read from bench/bridge/bridge_bench.cpp, has the default
    /// of its <see cref="BridgeBenchmarkOptions"/> property, and the C++ has no option this table does not pair.
    /// </summary>
    [Test]
    public void DefaultsMatchTheCppBaseline()
    {
        var cpp = CppOptionDefaults();
        var defaults = new BridgeBenchmarkOptions();
        (string Field, object CSharp)[] pairs =
        [
            ("model", defaults.Model),
            ("threads", defaults.Threads),
            ("steps", defaults.TimedSteps),
            ("warmup", defaults.WarmupSteps),
            ("batch", defaults.Batch),
            ("lr", defaults.LearningRate),
            ("momentum", defaults.Momentum),
            ("seed", defaults.Seed),
            ("data", defaults.DataDirectory ?? FashionMnist.DefaultDirectory),   // null: FashionMnist.Load's default
        ];

        Assert.That(cpp.Keys, Is.EquivalentTo(pairs.Select(p => p.Field)), "fields of struct Options in bridge_bench.cpp");
        Assert.Multiple(() =>
        {
            foreach (var (field, csharp) in pairs)
            {
                var text = cpp[field];
                object parsed = csharp switch
                {
                    string => CppStringLiteral(text),
                    int or long => long.Parse(text, CultureInfo.InvariantCulture),
                    double => double.Parse(text, CultureInfo.InvariantCulture),
                    _ => throw new InvalidOperationException($"no parser for {csharp.GetType()}"),
                };
                var expected = csharp is int i ? (long)i : csharp;
                Assert.That(parsed, Is.EqualTo(expected), $"Options::{field} = {text} in bridge_bench.cpp");
            }
        });
    }

    [Test]
    public void EveryBadValueIsNamed()
    {
        var options = new BridgeBenchmarkOptions
        {
            Model = "resnet", Threads = 0, TimedSteps = 0, WarmupSteps = -1, Batch = 0, LearningRate = 0, Momentum = 1, Seed = -1,
        };
        var problems = options.Problems();
        Assert.That(problems, Has.Count.EqualTo(8), string.Join("\n", problems));
        Assert.That(problems, Has.Some.Contains("--model: unknown model 'resnet'"));
        Assert.That(problems, Has.Some.Contains("--threads must be at least 1"));
        Assert.That(problems, Has.Some.Contains("--steps must be at least 1"));
        Assert.That(problems, Has.Some.Contains("--warmup must not be negative"));
        Assert.That(problems, Has.Some.Contains("--batch must be from 1 to 60000"));
        Assert.That(problems, Has.Some.Contains("--lr must be a positive number"));
        Assert.That(problems, Has.Some.Contains("--momentum must be in [0, 1)"));
    }

    [Test]
    public void TrainOptionsAreSingleRankSgdWithMomentum()
    {
        var train = new BridgeBenchmarkOptions { Model = "cnn", Threads = 2, Batch = 64, Seed = 5 }.ToTrainOptions();
        Assert.That(train.Algorithm, Is.EqualTo("single"));
        Assert.That((train.Model, train.Threads, train.Batch, train.Seed), Is.EqualTo(("cnn", (int?)2, 64, 5L)));
        Assert.That((train.Optimizer, train.LearningRate, train.Momentum, train.Nesterov, train.WeightDecay),
            Is.EqualTo((OptimizerKind.Sgd, 0.05, 0.9, false, 0.0)));
        Assert.DoesNotThrow(() => train.Validate(1));
    }

    [Test]
    public void OrderFingerprintIsFnv1aOfTheIndicesInOrder()
    {
        var sampler = new ShuffleSampler(10, seed: 1, globalBatch: 2, worker: 0, workers: 1);
        var expected = 0xcbf29ce484222325UL;
        var batch = new int[2];
        for (var t = 0; t < 7; t++)
        {
            sampler.Indices(t, batch);
            foreach (var i in batch)
            {
                expected = (expected ^ (ulong)i) * 0x100000001b3UL;
            }
        }

        Assert.That(BridgeBenchmark.OrderFingerprint(new ShuffleSampler(10, 1, 2, 0, 1), 2, 7), Is.EqualTo(expected));
        Assert.That(BridgeBenchmark.OrderFingerprint(new ShuffleSampler(10, 2, 2, 0, 1), 2, 7), Is.Not.EqualTo(expected));
    }

    /// <summary>
    /// The fingerprint of the default run's order (60 000 samples, seed 1, batch 128, 20 + 300 steps) as
    /// bench/bridge/bridge_bench.cpp computes it with its own SplitMix64 shuffle: pins the two implementations together.
    /// </summary>
    [Test]
    public void OrderFingerprintOfTheDefaultRunIsTheCppBaselines() =>
        Assert.That(BridgeBenchmark.OrderFingerprint(new ShuffleSampler(60_000, 1, 128, 0, 1), 128, 320).ToString("x16"),
            Is.EqualTo(CppDefaultRunFingerprint));

    [Test]
    public void PercentilesAreTheNearestRankBelowLikeTheCppBaseline()
    {
        double[] samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6, 11];   // sorted: 1..11, n - 1 = 10
        Assert.That(BridgeBenchmark.Percentiles(samples, [0.1, 0.25, 0.5, 0.75, 0.9]), Is.EqualTo(new double[] { 2, 3, 6, 8, 10 }));
        Assert.That(samples[0], Is.EqualTo(5), "the input is not sorted in place");
    }

    [Test]
    public void RawLineHasTheHeadersColumnsInTheCppFormat()
    {
        var result = new BridgeBenchmarkResult("mlp", 2, 128, 300, 1.23456, 1.2, 1.1, 123.456789012345, 33000, 2.3456789012, 0xabcUL);
        Assert.That(result.RawLine, Is.EqualTo("mlp 2 128 300 1.2346 1.2000 1.1000 123.4567890123 33000 2.34567890 0000000000000abc"));
        Assert.That(result.RawLine.Split(' '), Has.Length.EqualTo(BridgeBenchmarkResult.RawHeader.Split(' ').Length));
    }

    private const string CppDefaultRunFingerprint = "7cd392698a806ad7";

    /// <summary>The initializer text of each field of <c>struct Options { ... };</c> in bench/bridge/bridge_bench.cpp, by field name.</summary>
    private static Dictionary<string, string> CppOptionDefaults()
    {
        var source = File.ReadAllText(Path.Combine(RepoPaths.Root, "bench", "bridge", "bridge_bench.cpp"));
        var block = Regex.Match(source, @"struct Options \{(?<body>[^}]*)\};");
        Assert.That(block.Success, Is.True, "struct Options { ... }; not found in bridge_bench.cpp");
        var fields = new Dictionary<string, string>();
        foreach (var line in block.Groups["body"].Value.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0))
        {
            var field = Regex.Match(line, @"^[\w:]+\s+(?<name>\w+)\s*=\s*(?<value>[^;]+?)\s*;$");
            Assert.That(field.Success, Is.True, $"not a 'type name = default;' field of struct Options: {line}");
            fields.Add(field.Groups["name"].Value, field.Groups["value"].Value);
        }

        return fields;
    }

    private static string CppStringLiteral(string text)
    {
        Assert.That(text, Does.StartWith("\"").And.EndWith("\"").And.Not.Contain("\\"), $"not a plain string literal: {text}");
        return text[1..^1];
    }
}
