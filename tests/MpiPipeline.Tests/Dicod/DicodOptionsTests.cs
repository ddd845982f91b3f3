using MpiPipeline.Data;
using MpiPipeline.Dicod;

namespace MpiPipeline.Tests.Dicod;

/// <summary>The dicod settings' checks and the .npy reader behind --signal and --dictionary.</summary>
[TestFixture]
internal sealed class DicodOptionsTests
{
    [Test]
    public void DefaultsHaveNoProblemOnUpToManyRanks()
    {
        Assert.That(new DicodOptions().Problems(1), Is.Empty);
        Assert.That(new DicodOptions().Problems(64), Is.Empty);
    }

    [Test]
    public void SegmentsShorterThanTwoLMinusOneAreRefused()
    {
        // T - L + 1 = 85 activations: 42 per rank on 2 ranks (>= 31), 21 on 4 (< 31).
        var o = new DicodOptions { Length = 100, AtomLength = 16 };
        Assert.That(o.Problems(2), Is.Empty);
        Assert.That(o.Problems(4).Single(), Does.StartWith("T/W < 2L - 1: 4 ranks cut the 85 activations (T - L + 1) into segments of 21, shorter than 2L - 1 = 31"));
    }

    [Test]
    public void NegativeLambdaAndBaselinesOnSeveralRanksAreRefused()
    {
        Assert.That(new DicodOptions { Lambda = -0.5 }.Problems(1).Single(), Does.StartWith("--lambda -0.5: lambda must be"));
        Assert.That(new DicodOptions { Solver = "lgcd" }.Problems(2).Single(), Does.StartWith("--solver lgcd is a one-rank baseline"));
        Assert.That(new DicodOptions { Tol = 0 }.Problems(1).Single(), Does.StartWith("--tol 0"));
    }

    [Test]
    public void NpyRoundTripsAndNamesWhatIsWrong()
    {
        var path = Path.Combine(Path.GetTempPath(), $"dicod-{Guid.NewGuid():N}.npy");
        try
        {
            double[] values = [1.5, -2, 3, 4, 5, 6.25];
            File.WriteAllBytes(path, NpyFile.Encode([2, 3], values));
            var (shape, read) = NpyFile.ReadDoubles(path, "--signal");
            Assert.That(shape, Is.EqualTo(new[] { 2, 3 }));
            Assert.That(read, Is.EqualTo(values));

            File.WriteAllBytes(path, NpyFile.Encode([3], [1, 2, 3]));
            Assert.That(NpyFile.ReadDoubles(path, "--signal").Shape, Is.EqualTo(new[] { 3 }));

            File.WriteAllText(path, "not numpy");
            Assert.That(() => NpyFile.ReadDoubles(path, "--signal"), Throws.TypeOf<InputException>().With.Message.Contains("not a .npy file"));

            var bytes = NpyFile.Encode([2, 3], values);
            File.WriteAllBytes(path, bytes[..^8]);
            Assert.That(() => NpyFile.ReadDoubles(path, "--dictionary"), Throws.TypeOf<InputException>().With.Message.Contains("needs 48 bytes of data, the file holds 40"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ProblemFromFilesEqualsTheProblemTheyHold()
    {
        var signal = Path.Combine(Path.GetTempPath(), $"dicod-x-{Guid.NewGuid():N}.npy");
        var atoms = Path.Combine(Path.GetTempPath(), $"dicod-d-{Guid.NewGuid():N}.npy");
        try
        {
            var d = SyntheticCsc.Dictionary(2, 1, 4, 9);
            var (x, _) = SyntheticCsc.Signal(d, 2, 1, 4, 50, 0.1, 0.0, 9);
            File.WriteAllBytes(signal, NpyFile.Encode([50], x));
            File.WriteAllBytes(atoms, NpyFile.Encode([2, 4], d));
            var problem = DicodExperiment.BuildProblem(new DicodOptions { SignalPath = signal, DictionaryPath = atoms, Lambda = 0.2 });
            Assert.That((problem.K, problem.P, problem.L, problem.T), Is.EqualTo((2, 1, 4, 50)));
            Assert.That(problem.X, Is.EqualTo(x));
            Assert.That(problem.D, Is.EqualTo(d));

            File.WriteAllBytes(atoms, NpyFile.Encode([2, 2, 4], [.. d, .. d]));
            Assert.That(() => DicodExperiment.BuildProblem(new DicodOptions { SignalPath = signal, DictionaryPath = atoms }),
                Throws.TypeOf<InputException>().With.Message.Contains("atoms of 2 channel(s) for a signal of 1"));
        }
        finally
        {
            File.Delete(signal);
            File.Delete(atoms);
        }
    }
}
