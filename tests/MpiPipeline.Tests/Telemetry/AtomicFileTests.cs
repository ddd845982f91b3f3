using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Telemetry;

/// <summary>The one writer of every output file: all or nothing, no temporary file left, unique temporary names.</summary>
[TestFixture]
internal sealed class AtomicFileTests
{
    private string directory = null!;

    [SetUp]
    public void CreateDirectory() => directory = Directory.CreateTempSubdirectory("mpipipe-atomic-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(directory, recursive: true);

    [Test]
    public void AWriterThatThrowsMidWriteLeavesTheOldFileAndNoTemporary()
    {
        var path = Path.Combine(directory, "results.json");
        AtomicFile.WriteAllText(path, "old complete content\n");

        var thrown = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write("new, half written"u8);
            stream.Flush();
            throw new InvalidOperationException("disk full, as the test plays it");
        }));

        Assert.That(thrown!.Message, Does.Contain("disk full"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("old complete content\n"));
        Assert.That(Directory.GetFiles(directory), Is.EqualTo(new[] { path }), "the temporary file is removed");
    }

    [Test]
    public void AFailedRenameRemovesTheTemporaryAndNamesThePath()
    {
        // A folder where the file should go: the content is written to the temporary file, the rename fails.
        var path = Path.Combine(directory, "taken");
        Directory.CreateDirectory(path);

        var error = Assert.Throws<InputException>(() => AtomicFile.WriteAllText(path, "text"));

        Assert.That(error!.Message, Does.StartWith($"cannot write {path}:"));
        Assert.That(error.SameOnEveryRank, Is.False, "only the rank that writes sees it");
        Assert.That(Directory.GetFiles(directory), Is.Empty);
    }

    [Test]
    public void CreatesAMissingFolderAndReplacesAnOldFile()
    {
        var path = Path.Combine(directory, "a", "b", "params.bin");
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        AtomicFile.WriteAllBytes(path, [4, 5]);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 4, 5 }));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void TemporaryNamesAreUniquePerWriterAndHidden()
    {
        var path = Path.Combine(directory, "compare.md");
        var names = Enumerable.Range(0, 1000).Select(_ => AtomicFile.TemporaryName(path)).ToList();

        Assert.That(names.Distinct().Count(), Is.EqualTo(names.Count));
        Assert.That(names, Has.All.StartWith(Path.Combine(directory, $".compare.md.{Environment.ProcessId}.")).And.EndWith(".tmp"));
    }

    [Test]
    public void ConcurrentWritersOfOnePathLeaveOneCompleteVersion()
    {
        var path = Path.Combine(directory, "shared.txt");
        var versions = Enumerable.Range(0, 16).Select(i => new string((char)('a' + i), 100_000)).ToArray();

        Parallel.ForEach(versions, text => AtomicFile.WriteAllText(path, text));

        Assert.That(versions, Does.Contain(File.ReadAllText(path)), "one writer's whole text, not a mix");
        Assert.That(Directory.GetFiles(directory), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void CheckWritableRefusesAFolderAndAnUnwritablePlaceAndLeavesNothing()
    {
        Assert.That(Assert.Throws<InputException>(() => AtomicFile.CheckWritable(directory, "--output"))!.Message,
            Does.Contain("--output").And.Contain("is a folder"));

        // A file where a folder is expected: refused even as root, who ignores permissions.
        var file = Path.Combine(directory, "plain");
        File.WriteAllText(file, "x");
        Assert.That(Assert.Throws<InputException>(() => AtomicFile.CheckWritable(Path.Combine(file, "run.json"), "--trace"))!.Message,
            Does.StartWith($"--trace {Path.Combine(file, "run.json")}: cannot be written"));

        var fine = Path.Combine(directory, "new", "run.json");
        AtomicFile.CheckWritable(fine, "--output");
        Assert.That(File.Exists(fine), Is.False);
        Assert.That(Directory.GetFiles(Path.Combine(directory, "new")), Is.Empty, "the probe is removed");
    }
}
