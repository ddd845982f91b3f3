using System.Diagnostics;
using MpiPipeline.Mpi;
using MpiPipeline.Scaling;

namespace MpiPipeline.Tests.Scaling;

/// <summary>`mpipipe scaling --network RATE[,DELAY]`: parsing against literal tables, and how the jobs are wrapped.</summary>
[TestFixture]
public sealed class EmulatedNetworkTests
{
    private static readonly string[] Program = ["/opt/mpipipe"];
    private static readonly Dictionary<string, string?> Laptop = new() { ["PATH"] = "/usr/bin" };

    [TestCase("1gbit", "1gbit", null, 1e9, 0.0)]
    [TestCase("10gbit,50us", "10gbit", "50us", 10e9, 50e-6)]
    [TestCase("2.5gbit", "2.5gbit", null, 2.5e9, 0.0)]
    [TestCase("100mbit,1ms", "100mbit", "1ms", 100e6, 1e-3)]
    [TestCase(" 1Gbit , 0.5MS ", "1gbit", "0.5ms", 1e9, 0.5e-3)]
    [TestCase("800kbit", "800kbit", null, 800e3, 0.0)]
    public void ParsesRateAndDelay(string text, string rate, string? delay, double bitsPerSecond, double delaySeconds)
    {
        var network = EmulatedNetwork.Parse(text);
        Assert.That((network.Rate, network.Delay), Is.EqualTo((rate, delay)));
        Assert.That(network.BitsPerSecond, Is.EqualTo(bitsPerSecond).Within(1e-9 * bitsPerSecond));
        Assert.That(network.DelaySeconds, Is.EqualTo(delaySeconds).Within(1e-15));
    }

    [Test]
    public void NoneIsUnshapedTcp()
    {
        var network = EmulatedNetwork.Parse("none");
        Assert.That(network.BitsPerSecond, Is.Null);
        Assert.That(network.Describe(), Does.StartWith("TCP over loopback, unshaped"));
        Assert.That(EmulatedNetwork.Parse("none,50us").Delay, Is.EqualTo("50us"));
    }

    [TestCase("1gb", "is not RATE[,DELAY]")]
    [TestCase("gbit", "is not RATE[,DELAY]")]
    [TestCase("0gbit", "is not RATE[,DELAY]")]
    [TestCase("-1gbit", "is not RATE[,DELAY]")]
    [TestCase("1.gbit", "is not RATE[,DELAY]")]
    [TestCase("1,5gbit", "is not RATE[,DELAY]")]
    [TestCase("1gbit,50us,1", "is not RATE[,DELAY]")]
    [TestCase("", "is not RATE[,DELAY]")]
    [TestCase("1gbit,50", "the delay '50' is not a number with us or ms")]
    [TestCase("1gbit,", "the delay '' is not a number with us or ms")]
    [TestCase("1gbit,50ns", "the delay '50ns' is not a number with us or ms")]
    public void BadTextIsOneMessage(string text, string message) =>
        Assert.That(Assert.Throws<InputException>(() => EmulatedNetwork.Parse(text))!.Message, Does.StartWith($"--network '{text}'").And.Contain(message));

    [Test]
    public void WordsForTheReports()
    {
        var network = EmulatedNetwork.Parse("10gbit,50us");
        Assert.That(network.ToString(), Is.EqualTo("10gbit,50us"));
        Assert.That(network.Label, Is.EqualTo("emulated:10gbit/50us"), "a CSV cell: no comma");
        Assert.That(network.Describe(), Is.EqualTo(
            "TCP over loopback shaped to 10gbit (1250 MB/s), 50us one-way delay; one link shared by all ranks on the machine (aggregate bandwidth), not a link per node"));
        Assert.That(EmulatedNetwork.Parse("1gbit").Label, Is.EqualTo("emulated:1gbit"));
    }

    [Test]
    public void EveryJobRunsInsideTheLauncherScriptWithItsEnvironmentKept()
    {
        var options = new ScalingOptions { Network = EmulatedNetwork.Parse("1gbit") };
        var launcher = JobLauncher.Create(options, Program, Laptop);
        var start = launcher.Command(2, ["info"]);
        Assert.That(JobLauncher.Format(start), Is.EqualTo($"bash {EmulatedNetwork.ScriptPath} --rate 1gbit --quiet -- mpiexec.mpich -n 2 /opt/mpipipe info"));
        Assert.That(start.Environment["HYDRA_IFACE"], Is.EqualTo("lo"));
        Assert.That(launcher.Describe(), Does.EndWith(", inside an emulated network (1gbit, emulate.sh)"));

        var openMpi = JobLauncher.Create(options with { Mpi = MpiFlavor.OpenMpi, Network = EmulatedNetwork.Parse("10gbit,50us") }, Program, Laptop).Command(4, ["info"]);
        Assert.That(JobLauncher.Format(openMpi), Does.StartWith($"bash {EmulatedNetwork.ScriptPath} --rate 10gbit --delay 50us --quiet -- mpirun.openmpi --oversubscribe"));
        Assert.That(openMpi.Environment["TERM"], Is.EqualTo("dumb"));
    }

    [Test]
    public void TheScriptTravelsWithTheProgram() =>
        Assert.That(File.ReadAllText(EmulatedNetwork.ScriptPath), Is.EqualTo(File.ReadAllText(Path.Combine(RepoPaths.Root, "bench", "network", "emulate.sh"))),
            "the build copies bench/network/emulate.sh next to mpipipe");

    [Test]
    public void RefusedWhereRanksWouldLeaveTheMachine()
    {
        var options = new ScalingOptions { Network = EmulatedNetwork.Parse("1gbit") };
        Assert.That(Assert.Throws<InputException>((options with { Hostfile = "hosts" }).Validate)!.Message,
            Does.Contain("--network emulates a network on this one machine").And.Contain("drop --hostfile or --network"));
        Assert.That(Assert.Throws<InputException>((options with { Launcher = LauncherKind.Srun }).Validate)!.Message, Does.Contain("drop --launcher srun or --network"));
        var allocation = new Dictionary<string, string?> { ["SLURM_JOB_ID"] = "42" };
        Assert.That(Assert.Throws<InputException>(() => JobLauncher.Create(options, Program, allocation))!.Message,
            Does.Contain("inside Slurm job 42 the launcher would be srun: add --launcher mpiexec"));
        Assert.DoesNotThrow(() => JobLauncher.Create(options with { Launcher = LauncherKind.Mpiexec }, Program, allocation));
    }

    [Test]
    public void AMissingScriptIsOneMessage() =>
        Assert.That(Assert.Throws<InputException>(() => EmulatedNetwork.Parse("1gbit").Check("/nonexistent/emulate.sh"))!.Message,
            Does.Contain("the launcher script /nonexistent/emulate.sh is missing"));

    /// <summary>The script's own words and exit code for bad text, which needs no privileges: the same forms as Parse.</summary>
    [TestCase("1gb", 64, "--rate '1gb' is not a rate")]
    [TestCase("0gbit", 64, "--rate '0gbit' is not a rate")]
    public void TheScriptRefusesBadTextAlike(string rate, int exit, string message)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var word in new[] { EmulatedNetwork.ScriptPath, "--rate", rate, "--", "true" })
        {
            start.ArgumentList.Add(word);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(exit), stderr);
        Assert.That(stderr.Trim(), Is.EqualTo($"emulate.sh: {message}: a positive number and kbit, mbit, gbit or tbit (e.g. 1gbit, 2.5gbit, 100mbit), or none"));
        Assert.That(() => EmulatedNetwork.Parse(rate), Throws.TypeOf<InputException>());
    }
}
