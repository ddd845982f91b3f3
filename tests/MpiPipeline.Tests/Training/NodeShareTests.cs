using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

public sealed class NodeShareTests
{
    [TestCase("0-1", new[] { 0, 1 })]
    [TestCase("0", new[] { 0 })]
    [TestCase("0-3,8,10-11", new[] { 0, 1, 2, 3, 8, 10, 11 })]
    [TestCase(" 2,0-1\n", new[] { 0, 1, 2 })]      // as /proc/self/status has it: a leading tab or space, a newline
    [TestCase("4-5,5-6", new[] { 4, 5, 6 })]      // overlaps counted once
    [TestCase("", new int[0])]
    public void ParsesTheKernelsCpuListFormat(string text, int[] cpus)
    {
        Assert.That(NodeShare.ParseCpuList(text), Is.EqualTo(cpus));
    }

    [TestCase("3-1")]
    [TestCase("a-b")]
    [TestCase("1-2-3")]
    [TestCase("-1")]
    public void RejectsWhatIsNotACpuList(string text)
    {
        Assert.That(() => NodeShare.ParseCpuList(text), Throws.TypeOf<FormatException>());
    }

    [TestCase(4, 2, true, 1, IdleWait.Sleep, IdleWait.Yield)]    // mpiexec -n 4 on a 2-core laptop
    [TestCase(2, 2, false, 1, IdleWait.Yield, null)]
    [TestCase(2, 8, false, 4, IdleWait.Yield, null)]             // srun -n 2 --cpus-per-task 4: the union of the two affinities
    [TestCase(3, 8, false, 2, IdleWait.Yield, null)]
    public void SharesTheNodesCoresAndWaitsPoliteWhenOversubscribed(int ranks, int cores, bool oversubscribed, int threads,
        IdleWait pipelineWait, IdleWait? allreduceWait)
    {
        var share = new NodeShare(ranks, cores);
        Assert.That(share.Oversubscribed, Is.EqualTo(oversubscribed));
        Assert.That(share.ThreadsPerRank, Is.EqualTo(threads));
        Assert.That(share.PipelineWait, Is.EqualTo(pipelineWait));
        Assert.That(share.AllreduceWait, Is.EqualTo(allreduceWait));
    }

    [Test]
    public void AnotherNodesOversubscriptionMakesEveryRankPollItsAllreduceButNotItsPipelineWaits()
    {
        // A blocking and a nonblocking Allreduce never match: the choice is the job's, the point-to-point wait the node's.
        var share = new NodeShare(2, 8, OtherNodeOversubscribed: true);
        Assert.That(share.Oversubscribed, Is.False);
        Assert.That(share.JobOversubscribed, Is.True);
        Assert.That(share.AllreduceWait, Is.EqualTo(IdleWait.Yield));
        Assert.That(share.PipelineWait, Is.EqualTo(IdleWait.Yield));
        Assert.That(share.ThreadsPerRank, Is.EqualTo(4));
        Assert.That(share.OversubscribedNote("x", wholeJob: true), Is.EqualTo("a node of this job has more ranks than cores (oversubscribed): x"));
        Assert.That(share.OversubscribedNote("x"), Is.Null);
    }

    [Test]
    public void TheNoteNamesRankZerosNode()
    {
        Assert.That(new NodeShare(4, 2).OversubscribedNote("waits sleep"), Is.EqualTo("4 ranks share 2 cores on rank 0's node (oversubscribed): waits sleep"));
        Assert.That(new NodeShare(2, 2).OversubscribedNote("waits sleep", wholeJob: true), Is.Null);
    }
}
