using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace MpiPipeline.Scaling;

/// <summary>
/// An emulated network for the sweep's jobs (<c>--network RATE[,DELAY]</c>): each job runs inside
/// <c>bench/network/emulate.sh</c>, a private network namespace whose loopback is shaped to <see cref="Rate"/> (tbf)
/// and delayed by <see cref="Delay"/> (netem), with both MPIs over TCP on it. One shaped loopback is one link that all
/// ranks share (<see cref="LinkTopology.Shared"/>).
/// </summary>
/// <remarks>
/// The namespace is made by the launcher script, not re-implemented here: one place knows the tc commands, the MPI
/// environment and the refusals, and `make bench-network`, the tests and this sweep all go through it. The build copies
/// the script next to the program (network/emulate.sh), so it is found from the binary wherever it runs.
/// </remarks>
/// <param name="Rate">tc's rate text, lower case (1gbit, 2.5gbit), or "none" for unshaped TCP loopback.</param>
/// <param name="Delay">tc's delay text (50us, 1ms), or null for no added latency.</param>
internal sealed partial record EmulatedNetwork(string Rate, string? Delay)
{
    public const string None = "none";

    /// <summary>What the launcher script's exit codes mean (documented in its header).</summary>
    public const int ExitUsage = 64, ExitUnavailable = 69, ExitNotVerified = 70, ExitNotPermitted = 77;

    /// <summary>The launcher script beside the program.</summary>
    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "network", "emulate.sh");

    private static readonly Dictionary<string, double> RateUnits = new(StringComparer.Ordinal)
    {
        ["bit"] = 1, ["kbit"] = 1e3, ["mbit"] = 1e6, ["gbit"] = 1e9, ["tbit"] = 1e12,
    };

    private static readonly Dictionary<string, double> DelayUnits = new(StringComparer.Ordinal) { ["us"] = 1e-6, ["ms"] = 1e-3 };

    [GeneratedRegex(@"^(?<value>[0-9]+(\.[0-9]+)?)(?<unit>[kmgt]?bit)$", RegexOptions.CultureInvariant)]
    private static partial Regex RatePattern();

    [GeneratedRegex(@"^(?<value>[0-9]+(\.[0-9]+)?)(?<unit>us|ms)$", RegexOptions.CultureInvariant)]
    private static partial Regex DelayPattern();

    /// <summary>The link's rate in bits per second; null for unshaped loopback.</summary>
    public double? BitsPerSecond => Rate == None ? null : Number(RatePattern().Match(Rate), RateUnits);

    /// <summary>The added one-way latency in seconds (0 without a delay).</summary>
    public double DelaySeconds => Delay is null ? 0 : Number(DelayPattern().Match(Delay), DelayUnits);

    /// <summary>
    /// "RATE" or "RATE,DELAY": RATE a positive number with kbit, mbit, gbit or tbit (tc's words; 1gbit, 2.5gbit) or
    /// none; DELAY a number with us or ms. Case does not matter. Anything else is one message naming the form.
    /// </summary>
    public static EmulatedNetwork Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split(',', StringSplitOptions.TrimEntries);
        var rate = parts[0];
        var rateOk = rate == None || (RatePattern().Match(rate) is { Success: true } m && Number(m, RateUnits) > 0);
        if (parts.Length > 2 || !rateOk)
        {
            throw new InputException($"--network '{text}' is not RATE[,DELAY]: RATE a positive number with kbit, mbit, gbit or tbit (e.g. 1gbit, 2.5gbit) or none, DELAY a number with us or ms (e.g. 10gbit,50us)");
        }

        var delay = parts.Length == 2 ? parts[1] : null;
        if (delay is not null && !DelayPattern().IsMatch(delay))
        {
            throw new InputException($"--network '{text}': the delay '{delay}' is not a number with us or ms (e.g. 10gbit,50us)");
        }

        return new EmulatedNetwork(rate, delay);
    }

    /// <summary>As given: "1gbit" or "10gbit,50us".</summary>
    public override string ToString() => Delay is null ? Rate : $"{Rate},{Delay}";

    /// <summary>The network in words, topology included, for reports.</summary>
    public string Describe() =>
        (Rate == None ? "TCP over loopback, unshaped" : $"TCP over loopback shaped to {Rate} ({BitsPerSecond / 8e6:0.###} MB/s)") +
        (Delay is null ? "" : $", {Delay} one-way delay") +
        "; one link shared by all ranks on the machine (aggregate bandwidth), not a link per node";

    /// <summary>A CSV cell without commas: "emulated:1gbit" or "emulated:10gbit/50us".</summary>
    public string Label => "emulated:" + (Delay is null ? Rate : $"{Rate}/{Delay}");

    /// <summary>The script and its options, before --check or the command.</summary>
    private IEnumerable<string> ScriptArguments(string script) =>
        [script, "--rate", Rate, .. Delay is null ? Array.Empty<string>() : ["--delay", Delay], "--quiet"];

    /// <summary>Turns <paramref name="start"/> into the same command run inside this network (environment kept).</summary>
    public void Wrap(ProcessStartInfo start, string script)
    {
        string[] command = [start.FileName, .. start.ArgumentList];
        start.FileName = "bash";
        start.ArgumentList.Clear();
        foreach (var word in ScriptArguments(script).Concat(["--", .. command]))
        {
            start.ArgumentList.Add(word);
        }
    }

    /// <summary>
    /// Sets the network up once without running anything (<c>emulate.sh --check</c>): where it cannot run (no root or
    /// CAP_NET_ADMIN, no tc, no netem for a delay) the script's own message becomes one InputException, before any job.
    /// </summary>
    public void Check(string script)
    {
        if (!File.Exists(script))
        {
            throw new InputException($"--network: the launcher script {script} is missing (it is copied next to mpipipe by the build; rebuild)");
        }

        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var word in ScriptArguments(script).Append("--check"))
        {
            start.ArgumentList.Add(word);
        }

        using var process = Process.Start(start) ?? throw new InputException("--network: could not start bash");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            process.Kill(entireProcessTree: true);
            throw new InputException($"--network {this}: setting up the emulated network took more than 30 s");
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            var said = (stderr.Result + stdout.Result).Trim().Replace("emulate.sh: ", "", StringComparison.Ordinal);
            throw new InputException($"--network {this}: cannot emulate the network here (exit {process.ExitCode}): {said}");
        }
    }

    private static double Number(Match match, Dictionary<string, double> units) =>
        double.Parse(match.Groups["value"].Value, NumberStyles.Float, CultureInfo.InvariantCulture) * units[match.Groups["unit"].Value];
}
