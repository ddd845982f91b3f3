using System.Diagnostics;

namespace MpiPipeline.TorchSharp.Tests;

/// <summary>
/// The build step of LibTorchSharpLoading.targets, read back with binutils' readelf (not the step's own
/// parser): where this system's libstdc++ lacks GLIBCXX_3.4.32 the output's copy has that version need weak and the
/// package cache's copy does not; where it has it, the copy is the package's, byte for byte. That the patched copy
/// loads is shown by every rank test (each rank loads it).
/// </summary>
public sealed class LibTorchSharpPatchTests
{
    private const string Version = "GLIBCXX_3.4.32";
    private const string Relative = "runtimes/linux-x64/native/libLibTorchSharp.so";

    [Test]
    public void TheOutputsCopyIsPatchedExactlyWhereLibstdcxxLacksTheVersionAndTheCacheIsUntouched()
    {
        var output = Path.Combine(AppContext.BaseDirectory, Relative);
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(packages, "torchsharp", typeof(global::TorchSharp.torch).Assembly.GetName().Version!.ToString(3), Relative);
        Assert.That(File.Exists(output), output);
        Assert.That(File.Exists(cached), cached);

        var systemHasIt = Run("bash", "-c", $"strings /usr/lib/x86_64-linux-gnu/libstdc++.so.6 | grep -qx {Version} && echo yes || echo no").Trim() == "yes";
        Assert.That(NeedFlags(cached), Is.EqualTo("none"), "the package cache keeps the original");
        Assert.That(NeedFlags(output), Is.EqualTo(systemHasIt ? "none" : "WEAK"));

        var a = File.ReadAllBytes(output);
        var b = File.ReadAllBytes(cached);
        Assert.That(a, Has.Length.EqualTo(b.Length));
        var differing = Enumerable.Range(0, a.Length).Count(i => a[i] != b[i]);
        Assert.That(differing, Is.EqualTo(systemHasIt ? 0 : 1), "one flag byte, nothing else");
    }

    /// <summary>readelf -V's flags for the GLIBCXX_3.4.32 need.</summary>
    private static string NeedFlags(string library)
    {
        var line = Run("readelf", "-V", library).Split('\n').Single(l => l.Contains($"Name: {Version}", StringComparison.Ordinal));
        return line.Split("Flags:")[1].Trim().Split(' ')[0];
    }

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return text;
    }
}
