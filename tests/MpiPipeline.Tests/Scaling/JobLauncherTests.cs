using MpiPipeline.Mpi;
using MpiPipeline.Scaling;

namespace MpiPipeline.Tests.Scaling;

/// <summary>The command lines of the sweep's jobs: srun in an allocation, mpiexec elsewhere, with each MPI's flags.</summary>
[TestFixture]
public sealed class JobLauncherTests
{
    private static readonly string[] Program = ["/opt/mpipipe"];
    private static readonly Dictionary<string, string?> Laptop = new() { ["PATH"] = "/usr/bin" };
    private static readonly Dictionary<string, string?> Allocation = new()
    {
        ["SLURM_JOB_ID"] = "42", ["SLURM_NTASKS"] = "4", ["SLURM_CPUS_ON_NODE"] = "8", ["SLURM_JOB_NUM_NODES"] = "2", ["SLURM_PROCID"] = "0",
    };

    private static string Line(ScalingOptions o, IReadOnlyDictionary<string, string?> env, int ranks) =>
        JobLauncher.Format(JobLauncher.Create(o, Program, env).Command(ranks, ["info"]));

    [Test]
    public void MpichOnALaptop()
    {
        var launcher = JobLauncher.Create(new ScalingOptions(), Program, Laptop);
        var start = launcher.Command(2, ["info"]);
        Assert.That(launcher.Kind, Is.EqualTo(LauncherKind.Mpiexec));
        Assert.That(JobLauncher.Format(start), Is.EqualTo("mpiexec.mpich -n 2 /opt/mpipipe info"));
        Assert.That(start.Environment["HYDRA_IFACE"], Is.EqualTo("lo"));
        Assert.That(launcher.Cores, Is.EqualTo(Environment.ProcessorCount));
    }

    [Test]
    public void OpenMpiOversubscribesAndGetsADumbTerminal()
    {
        var start = JobLauncher.Create(new ScalingOptions { Mpi = MpiFlavor.OpenMpi, Hostfile = "h" }, Program, Laptop).Command(8, ["info"]);
        Assert.That(JobLauncher.Format(start), Does.StartWith("mpirun.openmpi --oversubscribe").And.EndWith("--hostfile h -n 8 /opt/mpipipe info"));
        Assert.That(start.Environment["TERM"], Is.EqualTo("dumb"));
    }

    [Test]
    public void SrunInsideAnAllocation()
    {
        var launcher = JobLauncher.Create(new ScalingOptions(), Program, Allocation);
        Assert.That(launcher.Kind, Is.EqualTo(LauncherKind.Srun));
        Assert.That(launcher.Cores, Is.EqualTo(16), "8 CPUs on each of 2 nodes");
        Assert.That(Line(new ScalingOptions(), Allocation, 4), Is.EqualTo("srun --mpi=pmi2 -n 4 --kill-on-bad-exit=1 /opt/mpipipe info"));
        Assert.That(Line(new ScalingOptions(), Allocation, 8), Does.Contain("--overcommit"), "more ranks than tasks");
        var openMpi = JobLauncher.Create(new ScalingOptions { Mpi = MpiFlavor.OpenMpi }, Program, Allocation).Command(2, ["info"]);
        Assert.That(JobLauncher.Format(openMpi), Does.StartWith("srun --mpi=pmix "));
        Assert.That(openMpi.Environment[MpiLibrary.OverrideVariable], Is.EqualTo("libmpi.so.40"), "srun --mpi=pmix does not say which MPI");
        Assert.That(Line(new ScalingOptions { Launcher = LauncherKind.Mpiexec }, Allocation, 2), Does.StartWith("mpiexec.mpich"));
    }

    [Test]
    public void RefusesWhatCannotWork()
    {
        var ex = Assert.Throws<InputException>(() => JobLauncher.Create(new ScalingOptions { Launcher = LauncherKind.Srun }, Program, Laptop));
        Assert.That(ex!.Message, Does.Contain("needs a Slurm allocation"));
        ex = Assert.Throws<InputException>(() => JobLauncher.Create(new ScalingOptions(), Program, new Dictionary<string, string?> { ["PMI_SIZE"] = "4" }));
        Assert.That(ex!.Message, Does.Contain("not under mpiexec/srun"));
    }

    [Test]
    public void ArgumentsWithSpacesAreQuotedInTheLog() =>
        Assert.That(JobLauncher.Format(JobLauncher.Create(new ScalingOptions(), ["/my dir/mpipipe"], Laptop).Command(1, ["it's"])),
            Is.EqualTo("mpiexec.mpich -n 1 '/my dir/mpipipe' 'it'\\''s'"));
}
