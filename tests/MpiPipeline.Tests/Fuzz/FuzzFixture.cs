namespace MpiPipeline.Tests.Fuzz;

/// <summary>
/// What the fuzz fixtures share: the time each property runs, and a temporary folder for the files they write, made
/// before the first property and removed after the last.
/// </summary>
internal abstract class FuzzFixture
{
    /// <summary>Seconds per property (CsCheck runs each for a fixed time on every core but where a property writes files).</summary>
    protected const int Seconds = 3;

    protected FuzzFixture() => Folder = Path.Combine(Path.GetTempPath(), $"mpipipe-{GetType().Name}-{Environment.ProcessId}");

    protected string Folder { get; }

    [OneTimeSetUp]
    public void CreateFolder() => Directory.CreateDirectory(Folder);

    [OneTimeTearDown]
    public void RemoveFolder() => Directory.Delete(Folder, recursive: true);

    /// <summary>An empty folder <paramref name="name"/> in <see cref="Folder"/> (emptied if an earlier case left files).</summary>
    protected string FreshFolder(string name)
    {
        var folder = Path.Combine(Folder, name);
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }

        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>
    /// The property every reader of user files keeps: <paramref name="load"/> either works or throws an
    /// <see cref="InputException"/> whose message names <paramref name="name"/> (the file or folder); any other
    /// exception escapes and fails the property.
    /// </summary>
    protected static void LoadsOrNames(string name, Action load, string? what = null)
    {
        try
        {
            load();
        }
        catch (InputException e)
        {
            Assert.That(e.Message, Does.Contain(name), what);
        }
    }
}
