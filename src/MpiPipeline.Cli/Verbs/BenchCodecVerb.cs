using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MpiPipeline.Exchange.Compression;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe bench codec</c>: one rank's compressor encode and decode throughput, without MPI or libtorch, on a
/// synthetic gradient of a given size (default: cnn's 206,922 parameters on Fashion-MNIST). The rate is fp32 gradient
/// megabytes per second (4 bytes a coordinate), so it compares with the network's: a compressor pays once its encode
/// plus n decodes take longer than the fp32 bytes would on the wire.
/// </summary>
internal static class BenchCodecVerb
{
    /// <summary>cnn on 1x28x28, 10 classes: conv 1-16 (160), conv 16-32 (4,640), linear 1568-128 (200,832), linear 128-10 (1,290).</summary>
    private const int CnnParameters = 206_922;

    internal static Command Create()
    {
        var compressors = new Option<string>("--compress")
        {
            Description = "Compressors, space- or semicolon-separated --compress specs.",
            HelpName = "LIST",
            DefaultValueFactory = _ => "ecq:4;qsgd:4",
        };
        var size = new Option<int>("--size") { Description = "Gradient coordinates.", HelpName = "N", DefaultValueFactory = _ => CnnParameters };
        var rounds = new Option<int>("--rounds") { Description = "Timed encodes (and decodes) per compressor.", HelpName = "N", DefaultValueFactory = _ => 50 };
        var command = new Command("codec", "Encode and decode throughput of --compress compressors on one rank (no MPI), fp32 MB/s.");
        command.Options.Add(compressors);
        command.Options.Add(size);
        command.Options.Add(rounds);
        command.SetAction(parse =>
        {
            var specs = Specs(parse.GetValue(compressors)!);
            var problem = Problem(specs, parse.GetValue(size), parse.GetValue(rounds));
            if (problem is not null)
            {
                Console.Error.WriteLine($"mpipipe bench codec: {problem}");
                return 2;
            }

            Run(specs, parse.GetValue(size), parse.GetValue(rounds));
            return 0;
        });
        return command;
    }

    /// <summary>The usage error, if any (one process, no MPI: checked before any work).</summary>
    private static string? Problem(string[] specs, int size, int rounds)
    {
        if (size < 1 || rounds < 1)
        {
            return "--size and --rounds must be at least 1";
        }

        foreach (var spec in specs)
        {
            if (CompressorRegistry.IsNone(spec))
            {
                return $"--compress {spec}: nothing to encode; name a compressor";
            }

            try
            {
                CompressorRegistry.Validate(spec);
            }
            catch (Exception e) when (e is InputException or ArgumentException)
            {
                return e.Message;
            }
        }

        return specs.Length == 0 ? "--compress names no compressor" : null;
    }

    private static string[] Specs(string list) =>
        list.Split([' ', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static void Run(string[] specs, int size, int rounds)
    {
        var gradient = SyntheticGradient(size, 1);
        var sum = new float[size];
        var megabytes = size * (double)sizeof(float) / 1e6;
        Console.WriteLine(FormattableString.Invariant($"# {size} coordinates ({megabytes:F3} MB fp32), {rounds} rounds, median round; {Environment.ProcessorCount} cores"));
        Console.WriteLine("compressor                         encode_MB/s  decode_MB/s  encode_ms  decode_ms  payload_bytes  digest");
        foreach (var spec in specs)
        {
            var compressor = CompressorRegistry.Create(spec, new CompressorContext(1, 0))!;
            var encode = new double[rounds];
            var decode = new double[rounds];
            var payloadBytes = 0;
            // The digest of every timed payload, the decoded sums and the final residual: equal digests, same bits.
            using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            // Warm up for a second: until tiered compilation has replaced the first, unoptimized code (with a few
            // rounds only, the first compressor measured ran about 3x slower than the same code later).
            var warmUp = Stopwatch.StartNew();
            for (var warm = 1L; warmUp.Elapsed.TotalSeconds < 1 || warm <= 50; warm++)
            {
                compressor.DecodeAdd(compressor.Encode(gradient, -warm), sum);
            }

            // A fresh one for the timed rounds: the warm-up's length varies, and an error-feedback residual would carry it into the digest.
            compressor = CompressorRegistry.Create(spec, new CompressorContext(1, 0))!;

            for (var r = 0; r < rounds; r++)
            {
                var clock = Stopwatch.StartNew();
                var payload = compressor.Encode(gradient, r);
                encode[r] = clock.Elapsed.TotalSeconds;
                payloadBytes = payload.Length;
                sum.AsSpan().Clear();
                clock.Restart();
                compressor.DecodeAdd(payload, sum);
                decode[r] = clock.Elapsed.TotalSeconds;
                digest.AppendData(payload);
                digest.AppendData(MemoryMarshal.AsBytes(sum.AsSpan()));
            }

            digest.AppendData(MemoryMarshal.AsBytes(compressor.Residual));
            var e = Median(encode);
            var d = Median(decode);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{compressor.Spec,-34} {megabytes / e,11:F1}  {megabytes / d,11:F1}  {e * 1e3,9:F3}  {d * 1e3,9:F3}  {payloadBytes,13}  {Convert.ToHexStringLower(digest.GetHashAndReset())[..16]}"));
        }
    }

    /// <summary>Gaussian coordinates (Box-Muller on a seeded Random), scale 1e-3 with a slowly varying per-1024 magnitude, as layers differ.</summary>
    private static float[] SyntheticGradient(int size, int seed)
    {
        var random = new Random(seed);
        var g = new float[size];
        for (var i = 0; i < size; i++)
        {
            var u1 = 1 - random.NextDouble();
            var u2 = random.NextDouble();
            var layer = 1 + (0.5 * Math.Sin(i / 1024.0));
            g[i] = (float)(1e-3 * layer * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return g;
    }

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        return sorted[sorted.Length / 2];
    }
}
