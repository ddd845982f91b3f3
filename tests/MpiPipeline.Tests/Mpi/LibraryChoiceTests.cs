using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Mpi;

/// <summary>Which library is tried, in which order, for which launcher; and the world-size check.</summary>
[TestFixture]
public sealed class LibraryChoiceTests
{
    private static Dictionary<string, string?> Env(params (string Key, string Value)[] pairs) =>
        pairs.ToDictionary(p => p.Key, p => (string?)p.Value);

    [Test]
    public void OverrideIsTheOnlyCandidate()
    {
        var env = Env(("MPIPIPE_MPI_LIB", "/opt/intel/mpi/lib/libmpi.so.12"), ("OMPI_COMM_WORLD_SIZE", "4"));
        Assert.That(MpiLibrary.Candidates(env), Is.EqualTo(new[] { "/opt/intel/mpi/lib/libmpi.so.12" }));
    }

    [Test]
    public void OpenMpiLauncherTriesOpenMpiFirst()
    {
        var env = Env(("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "1"));
        Assert.That(MpiLibrary.LauncherFamily(env), Is.EqualTo("openmpi"));
        Assert.That(MpiLibrary.Candidates(env).Take(2), Is.EqualTo(new[] { "libmpi.so.40", "libmpi.so" }));
        Assert.That(MpiLibrary.Candidates(env), Does.Contain("libmpich.so.12"), "the other family stays in the fallback list");
    }

    [TestCase("PMI_RANK")]
    [TestCase("PMI_FD")]
    [TestCase("HYDI_CONTROL_FD")]
    public void MpichFamilyLauncherTriesMpichAbiFirst(string variable)
    {
        var env = Env((variable, "3"));
        Assert.That(MpiLibrary.LauncherFamily(env), Is.EqualTo("mpich"));
        Assert.That(MpiLibrary.Candidates(env).Take(3), Is.EqualTo(new[] { "libmpich.so.12", "libmpi.so.12", "libmpi_cray.so.12" }));
    }

    [Test]
    public void NoLauncherFallsBackToMpichThenOpenMpi()
    {
        var candidates = MpiLibrary.Candidates(Env()).ToList();
        Assert.That(candidates[0], Is.EqualTo("libmpich.so.12"));
        Assert.That(candidates.IndexOf("libmpich.so.12"), Is.LessThan(candidates.IndexOf("libmpi.so.40")));
    }

    [Test]
    public void ExpectedWorldSizeComesFromTheLauncher()
    {
        Assert.That(MpiEnvironment.ExpectedWorldSize(Env(("OMPI_COMM_WORLD_SIZE", "8"))), Is.EqualTo(("OMPI_COMM_WORLD_SIZE", 8)));
        Assert.That(MpiEnvironment.ExpectedWorldSize(Env(("PMI_SIZE", "3"))), Is.EqualTo(("PMI_SIZE", 3)));
        Assert.That(MpiEnvironment.ExpectedWorldSize(Env(("SLURM_PROCID", "0"), ("SLURM_STEP_NUM_TASKS", "16"), ("SLURM_NTASKS", "32"))),
            Is.EqualTo(("SLURM_STEP_NUM_TASKS", 16)), "srun's step size wins over the allocation's");
        Assert.That(MpiEnvironment.ExpectedWorldSize(Env(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "32"), ("PMI_SIZE", "4"))),
            Is.EqualTo(("PMI_SIZE", 4)), "mpiexec inside an allocation: the PMI size counts, not the allocation's");
        Assert.That(MpiEnvironment.ExpectedWorldSize(Env()), Is.Null, "a singleton run has nothing to check");
    }

    [Test]
    public void MatchingWorldSizePasses() =>
        Assert.DoesNotThrow(() => MpiEnvironment.CheckWorldSize(4, Env(("PMI_SIZE", "4"))));

    [Test]
    public void MismatchedWorldSizeNamesBothSizes()
    {
        var error = Assert.Throws<InputException>(() => MpiEnvironment.CheckWorldSize(1, Env(("OMPI_COMM_WORLD_SIZE", "4"))));
        Assert.That(error!.Message, Does.StartWith("MPI world size is 1 but the launcher started 4 processes (OMPI_COMM_WORLD_SIZE=4)"));
    }

    [Test]
    public void UserFacingMessagesHaveNoStackTrace()
    {
        Assert.That(MpiRuntime.Describe(new InputException("bad --tau 0: tau must be >= 1")), Is.EqualTo("bad --tau 0: tau must be >= 1"));
        Assert.That(MpiRuntime.Describe(new InvalidOperationException("boom")),
            Is.EqualTo("InvalidOperationException: boom (set MPIPIPE_DEBUG=1 for the stack trace)"));
    }
}
