using System.CommandLine;
using MpiPipeline.Cli.Verbs;

namespace MpiPipeline.Tests.Cli;

/// <summary>`mpipipe bench bridge` argument checks: all at parse time, before MPI starts (usage errors, exit code 2).</summary>
[TestFixture]
public sealed class BenchBridgeVerbTests
{
    private static ParseResult Parse(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(BenchVerb.Create());
        return root.Parse(["bench", "bridge", .. args]);
    }

    [Test]
    public void DefaultsAreValid() => Assert.That(Parse().Errors, Is.Empty);

    [Test]
    public void GoodOptionsParse() =>
        Assert.That(Parse("--model", "cnn", "--threads", "2", "--steps", "5", "--warmup", "0", "--batch", "64", "--lr", "0.1",
            "--momentum", "0", "--seed", "7", "--data", "/tmp").Errors, Is.Empty);

    [TestCase("--model: unknown model 'resnet'", "--model", "resnet")]
    [TestCase("--threads must be at least 1", "--threads", "0")]
    [TestCase("--steps must be at least 1", "--steps", "0")]
    [TestCase("--warmup must not be negative", "--warmup", "-1")]
    [TestCase("--batch must be from 1 to 60000", "--batch", "70000")]
    [TestCase("--lr must be a positive number", "--lr", "0")]
    [TestCase("--momentum must be in [0, 1)", "--momentum", "1")]
    public void BadOptionsAreUsageErrors(string message, params string[] args)
    {
        var errors = Parse(args).Errors.Select(e => e.Message).ToList();
        Assert.That(errors, Has.Some.Contains(message), string.Join("\n", errors));
    }
}
