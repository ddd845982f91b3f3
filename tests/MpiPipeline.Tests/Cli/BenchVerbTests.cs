using System.CommandLine;
using MpiPipeline.Cli.Verbs;

namespace MpiPipeline.Tests.Cli;

/// <summary>`mpipipe bench mpi` argument checks: all at parse time, before MPI starts (usage errors, exit code 2).</summary>
[TestFixture]
public sealed class BenchVerbTests
{
    private static ParseResult Parse(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(BenchVerb.Create());
        return root.Parse(["bench", "mpi", .. args]);
    }

    [Test]
    public void DefaultsAreValid() => Assert.That(Parse().Errors, Is.Empty);

    [Test]
    public void GoodOptionsParse() =>
        Assert.That(Parse("--min-size", "64K", "--max-size", "4MiB", "--step", "4", "--ops", "allreduce",
            "--iterations", "0.5", "--samples", "5", "--warmup", "0", "--json", "out.json", "--raw").Errors, Is.Empty);

    [TestCase("the largest size (3072 B) must be a power of two", "--max-size", "3K")]
    [TestCase("the smallest size (2 B)", "--min-size", "2")]
    [TestCase("is below the smallest", "--min-size", "1M", "--max-size", "64K")]
    [TestCase("step between sizes (3)", "--step", "3")]
    [TestCase("--max-size: '64Q' is not a message size", "--max-size", "64Q")]
    [TestCase("--ops: unknown operation 'bcast'", "--ops", "pingpong,bcast")]
    [TestCase("--iterations must be a positive number", "--iterations", "0")]
    [TestCase("--samples must be at least 1", "--samples", "0")]
    [TestCase("--warmup must be a non-negative number", "--warmup", "-1")]
    [TestCase("--raw and --json - both write to stdout", "--raw", "--json", "-")]
    public void BadOptionsAreUsageErrors(string message, params string[] args)
    {
        var errors = Parse(args).Errors.Select(e => e.Message).ToList();
        Assert.That(errors, Has.Some.Contains(message), string.Join("\n", errors));
    }
}
