using System.CommandLine;
using MpiPipeline.Cli.Verbs;

namespace MpiPipeline.Tests.Cli;

/// <summary>`mpipipe bench codec`: one process, no MPI; bad values are usage errors (exit 2) before any work.</summary>
[TestFixture]
public sealed class BenchCodecVerbTests
{
    private static int Invoke(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(BenchVerb.Create());
        return root.Parse(["bench", "codec", .. args]).Invoke();
    }

    [TestCase("none")]
    [TestCase("ecq:0")]
    [TestCase("qsgd:4 bogus")]
    public void BadCompressorsAreUsageErrors(string compressors) =>
        Assert.That(Invoke("--compress", compressors, "--size", "100", "--rounds", "1"), Is.EqualTo(2));

    [Test]
    public void BadSizeIsAUsageError() => Assert.That(Invoke("--size", "0"), Is.EqualTo(2));

    [Test]
    public void ASmallRunOfEveryQuantizerCompletes() =>
        Assert.That(Invoke("--compress", "qsgd:4,64;ecq:2,64", "--size", "1000", "--rounds", "2"), Is.EqualTo(0));
}
