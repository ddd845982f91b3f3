using System.CommandLine;
using MpiPipeline.Cli.Verbs;

namespace MpiPipeline.Tests.Cli;

/// <summary>--compress and --compressors at parse time, before MPI starts (usage errors, exit code 2).</summary>
[TestFixture]
public sealed class CompressOptionTests
{
    private static ParseResult Parse(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(TrainVerb.Create());
        root.Subcommands.Add(CompareVerb.Create());
        root.Subcommands.Add(CompressionVerb.Create());
        return root.Parse(args);
    }

    private static List<string> Errors(params string[] args) => [.. Parse(args).Errors.Select(e => e.Message)];

    [TestCase("psgd", "ecq:4")]
    [TestCase("pipeline", "topk:0.01")]
    [TestCase("local-sgd", "none")]
    [TestCase(null, "qsgd:4")]
    public void CompressParsesWhereGradientsAreAveraged(string? algorithm, string spec) =>
        Assert.That(Errors(["train", .. algorithm is null ? Array.Empty<string>() : ["--algo", algorithm], "--compress", spec]), Is.Empty);

    [TestCase("local-sgd")]
    [TestCase("ri-sgd")]
    public void CompressWhereModelsAreAveragedIsAUsageError(string algorithm) =>
        Assert.That(Errors("train", "--compress", "ecq:4", "--algo", algorithm),
            Is.EqualTo(new[] { $"--compress applies to --algo psgd, pipeline only (got --algo {algorithm}): local SGD and RI-SGD average models, which stay exact" }));

    [Test]
    public void CompressorsListsParseAndBadOnesAreUsageErrors()
    {
        Assert.That(Errors("compare", "--compressors", "fp16", "topk:0.01", "ecq:4,256"), Is.Empty);
        Assert.That(Errors("compression", "--compressors", "none", "qsgd:4", "--seeds", "1", "2"), Is.Empty);
        Assert.That(Errors("compare", "--compressors", "fp16", "topk:2"),
            Is.EqualTo(new[] { "--compressors: --compress topk:R: R (the fraction kept) must be in (0, 1] (got '2')" }));
        Assert.That(Errors("compression", "--compressors", "zip").Single(), Does.StartWith("--compressors: unknown --compress 'zip'"));
    }
}
