using System.Globalization;
using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// The emulated network for real (bench/network/emulate.sh, which the build copies next to mpipipe): a 2-rank ping-pong
/// inside a loopback shaped to 1 Gbit must run at the link's 125 MB/s for both MPIs (on shared memory it would be
/// ~10 GB/s, so it cannot pass unshaped); `mpipipe scaling --network` runs every job inside it; without privileges the
/// launcher refuses with its documented message and exit code. The tests that shape a link need root (or the
/// capabilities), unshare and tc: elsewhere they are skipped (Assert.Ignore) with the reason.
/// </summary>
public sealed class NetworkTests : RankFixture
{
    private const double OneGbit = 125e6;

    /// <summary>The ping-pong's rate at 2-4 MiB may be this far from the link's.</summary>
    private const double Tolerance = 0.15;

    private static string Script => Path.Combine(MpiLauncher.Bin, "network", "emulate.sh");

    private static readonly Lazy<string?> Missing = new(WhyNoEmulation);

    /// <summary>
    /// Null where a link can be emulated; otherwise why not: not root, or the launcher's own check refuses with one of
    /// its "cannot run here" codes (77 not permitted, e.g. root in a container without CAP_SYS_ADMIN; 69 unshare, tc or
    /// tbf missing). Any other outcome is left to the tests, which then fail and show it.
    /// </summary>
    private static string? WhyNoEmulation()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return "not root (the emulated network needs root or CAP_NET_ADMIN)";
        }

        var check = MpiLauncher.Run("bash", [Script, "--rate", "1gbit", "--check"], TimeSpan.FromSeconds(30));
        return check.ExitCode is 77 or 69 ? $"emulate.sh --check: exit {check.ExitCode}: {check.Stderr.Trim()}" : null;
    }

    /// <summary>Skips the test, by name and with the reason, where no link can be emulated.</summary>
    private static void RequireEmulation()
    {
        if (Missing.Value is { } why)
        {
            Assert.Ignore($"needs an emulated network: {why}");
        }
    }

    private static LaunchResult Emulated(string[] network, MpiFlavor flavor, int ranks, string[] mpipipeArgs) =>
        MpiLauncher.Run("bash", [Script, .. network, "--", flavor.Launcher, .. flavor.Flags, "-n", ranks.ToString(CultureInfo.InvariantCulture),
            "dotnet", MpiLauncher.Mpipipe, .. mpipipeArgs], Limit, flavor.Environment);

    /// <summary>`bench mpi --raw` lines 'op size min_us median_us' -> (size, seconds) of one op: column 2 min, 3 median.</summary>
    private static Dictionary<long, double> Times(string stdout, string op, int column) =>
        stdout.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(w => w.Length == 4 && w[0] == op)
            .ToDictionary(w => long.Parse(w[1], CultureInfo.InvariantCulture), w => double.Parse(w[column], CultureInfo.InvariantCulture) * 1e-6);

    /// <summary>
    /// The rate is each size's fastest sample, the better of 2 and 4 MiB: the link bounds every sample from above (tbf's
    /// 256 KiB burst aside), while a busy machine only slows samples down (measured with 9 processes on 2 cores: 77 MB/s
    /// median, 127 MB/s fastest). Faster than the link fails at once (the shaping did not hold); slower is retried once,
    /// since only load can explain it.
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void PingPongOnALinkShapedToOneGbitRunsAtTheLinkRate(MpiFlavor flavor)
    {
        RequireEmulation();
        for (var attempt = 1; ; attempt++)
        {
            var result = Emulated(["--rate", "1gbit"], flavor, 2,
                ["bench", "mpi", "--ops", "pingpong", "--min-size", "2MiB", "--max-size", "4MiB", "--samples", "7", "--iterations", "0.5", "--raw"]);
            Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
            Assert.That(result.Stderr, Does.Contain("emulate.sh: network: loopback shaped to 1gbit; one link shared by all ranks on this machine (aggregate)"));
            Assert.That(result.Stderr, Does.Contain("qdisc tbf 1: root").And.Contain("rate 1Gbit"), "tc shows the shaping");

            var fastest = Times(result.Stdout, "pingpong", column: 2);
            Assert.That(fastest.Keys, Is.EquivalentTo(new[] { 2L << 20, 4L << 20 }), result.ToString());
            var rate = fastest.Max(p => p.Key / p.Value);
            var why = $"{flavor}: {rate / 1e6:F1} MB/s at 2-4 MiB (attempt {attempt}), the link is 125 MB/s (shared memory would be ~10 GB/s)\n{result}";
            Assert.That(rate, Is.LessThanOrEqualTo((1 + Tolerance) * OneGbit), why);
            if (rate >= (1 - Tolerance) * OneGbit || attempt == 2)
            {
                Assert.That(rate, Is.GreaterThanOrEqualTo((1 - Tolerance) * OneGbit), why);
                return;
            }
        }
    }

    /// <summary>
    /// Without the privileges a network namespace needs, the launcher refuses before anything, with one message and exit
    /// 77. As root the test drops them (setpriv to nobody, no capabilities left); as any other user it already lacks them.
    /// </summary>
    [Test]
    public void WithoutPrivilegesTheLauncherRefusesWithOneMessageAndExit77()
    {
        string[] launcher = ["bash", Script, "--rate", "1gbit", "--", "echo", "ran"];
        var result = Environment.IsPrivilegedProcess
            ? MpiLauncher.Run("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", "--", .. launcher], Prompt)
            : MpiLauncher.Run(launcher[0], launcher[1..], Prompt);
        Assert.That(result.ExitCode, Is.EqualTo(77), result.ToString());
        Assert.That(result.Stdout, Does.Not.Contain("ran"), "the command must not run unshaped");
        Assert.That(result.Stderr.Trim(), Is.EqualTo(
            "emulate.sh: cannot create a network namespace (unshare -n): the emulated network needs root or CAP_SYS_ADMIN and CAP_NET_ADMIN; " +
            "run it as root (e.g. sudo) or where those capabilities are granted"));
    }

    /// <summary>
    /// A latency needs netem in the kernel. Where it is there, a small ping-pong takes at least the delay one way; where
    /// it is not, the launcher and `mpipipe scaling --network` refuse up front with the reason. The oracle is tc itself.
    /// </summary>
    [Test]
    public void ADelayIsAddedWhereTheKernelHasNetemAndRefusedWhereNot()
    {
        RequireEmulation();
        var netem = MpiLauncher.Run("unshare", ["-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], Prompt).ExitCode == 0;
        var result = Emulated(["--rate", "none", "--delay", "1ms"], MpiFlavor.Mpich, 2,
            ["bench", "mpi", "--ops", "pingpong", "--min-size", "8", "--max-size", "8", "--samples", "5", "--iterations", "0.05", "--raw"]);
        if (netem)
        {
            Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
            var oneWay = Times(result.Stdout, "pingpong", column: 3)[8];
            Assert.That(oneWay, Is.InRange(1e-3, 5e-3), $"8 B one way with 1 ms added: {oneWay * 1e6:F0} µs\n{result}");
            return;
        }

        Assert.That(result.ExitCode, Is.EqualTo(69), result.ToString());
        Assert.That(result.Stderr, Does.Contain("emulate.sh: the kernel has no 'netem' queueing discipline").And.Contain("leave --delay out"));
        var scaling = MpiLauncher.RunMpipipe(["scaling", "--network", "1gbit,1ms", "--ranks", "1,2", "--out", WorkDirectory], Limit);
        Assert.That(scaling.ExitCode, Is.EqualTo(1), scaling.ToString());
        Assert.That(scaling.Stderr, Does.Contain("mpipipe scaling: --network 1gbit,1ms: cannot emulate the network here (exit 69): the kernel has no 'netem'"));
        Assert.That(Directory.Exists(Path.Combine(WorkDirectory, "runs")) && Directory.EnumerateFiles(Path.Combine(WorkDirectory, "runs"), "*.json").Any(),
            Is.False, "refused before any job");
    }

    /// <summary>
    /// `mpipipe scaling --network 1gbit`: every job (training and benchmark) starts through the launcher, the benchmark's
    /// ping-pong runs at the link's rate, and the report, the CSV files and the console say which network and topology.
    /// Open MPI: MPICH's ch4:ucx over TCP now and then hangs in MPI_Finalize after the work is done (about 1 job in 10
    /// here: one rank spinning in UCX's endpoint close, the other waiting in the PMI barrier), which would fail the sweep.
    /// </summary>
    [Test]
    public void ScalingRunsEveryJobInsideTheEmulatedNetworkAndSaysSo()
    {
        RequireEmulation();
        var output = Path.Combine(WorkDirectory, "sweep");
        var result = MpiLauncher.RunMpipipe(
            ["scaling", "--network", "1gbit", "--mpi", "openmpi", "--ranks", "1,2", "--mode", "strong", "--repetitions", "1", "--model", "mlp", "--global-batch", "64",
             "--steps", "4", "--warmup-steps", "1", "--train-args", $"--data {FashionMnistPrefix.Location} --train-samples 512 --test-samples 100", "--bench-samples", "3",
             "--bench-max-size", "2MiB", "--timeout", "60", "--out", output], Limit);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        Assert.That(result.Stdout, Does.Contain("mpirun.openmpi on this machine").And.Contain("inside an emulated network (1gbit, emulate.sh)").And.Contain("(one link shared by the ranks)"));

        foreach (var log in new[] { "strong-n1-r1.log", "strong-n2-r1.log", "bench-n2.log" })
        {
            Assert.That(File.ReadLines(Path.Combine(output, "runs", log)).First(), Does.StartWith("$ bash ").And.Contain("emulate.sh --rate 1gbit --quiet -- mpirun.openmpi"), log);
        }

        using var bench = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "runs", "bench-n2.json")));
        var big = bench.RootElement.GetProperty("Results").EnumerateArray()
            .Single(e => e.GetProperty("Op").GetString() == "pingpong" && e.GetProperty("SizeBytes").GetInt64() == 2L << 20);
        var rate = (2L << 20) / (big.GetProperty("MinMicroseconds").GetDouble() * 1e-6);
        // No faster than the link: on shared memory it would be ~10 GB/s. Only the upper side: the sweep's 3 short samples
        // on a busy machine can be far slower than the link (measured: 60 MB/s with 9 processes on 2 cores), and the
        // ping-pong test above holds the rate itself.
        Assert.That(rate, Is.LessThanOrEqualTo((1 + Tolerance) * OneGbit), "the benchmark job crossed the shaped link");

        var md = File.ReadAllText(Path.Combine(output, "scaling.md"));
        Assert.That(md, Does.Contain("Network: emulated, every job (training and benchmark) inside it: TCP over loopback shaped to 1gbit (125 MB/s); one link shared by all ranks on the machine (aggregate bandwidth), not a link per node."));
        Assert.That(md, Does.Contain("ring model on one shared link").And.Contain("these projections give every rank a link of its own"));
        foreach (var csv in new[] { "scaling.csv", "scaling-runs.csv" })
        {
            var lines = File.ReadAllLines(Path.Combine(output, csv));
            Assert.That(lines[0], Does.EndWith(",network"), csv);
            Assert.That(lines.Skip(1).Select(l => l.Split(',')[^1]), Is.All.EqualTo("emulated:1gbit"), csv);
        }

        using var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "runs", "network.json")));
        Assert.That(record.RootElement.GetProperty("network").GetString(), Is.EqualTo("1gbit"));
        Assert.That(record.RootElement.GetProperty("topology").GetString(), Is.EqualTo("one link shared by all ranks"));

        // Re-analysing these runs as if they had crossed the machine's own transports is refused, before any job.
        var reuse = MpiLauncher.RunMpipipe(["scaling", "--reuse", "--mpi", "openmpi", "--ranks", "1,2", "--mode", "strong", "--out", output], Limit);
        Assert.That(reuse.ExitCode, Is.EqualTo(1), reuse.ToString());
        Assert.That(reuse.Stderr, Does.Contain($"--reuse: the runs in {Path.Combine(output, "runs")} were measured on network '1gbit', this sweep asks for 'native'"));
    }
}
