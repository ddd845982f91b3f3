using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>One GPU per rank: cuda:(node-local rank mod visible GPUs); auto falls back to the CPU; cuda without GPUs is an error.</summary>
[TestFixture]
public sealed class DeviceSelectionTests
{
    [TestCase("cuda", 0, 4, "cuda:0")]
    [TestCase("cuda", 3, 4, "cuda:3")]
    [TestCase("cuda", 5, 4, "cuda:1")]
    [TestCase("cuda", 2, 1, "cuda:0")]   // --gpus-per-task=1: each rank sees its own GPU as device 0
    [TestCase("auto", 6, 8, "cuda:6")]
    [TestCase("auto", 6, 0, "cpu")]
    [TestCase("cpu", 1, 4, "cpu")]
    [TestCase("cuda:2", 0, 4, "cuda:2")]
    public void PicksTheDevice(string requested, int localRank, int devices, string expected) =>
        Assert.That(DeviceSelection.Resolve(requested, localRank, devices), Is.EqualTo(expected));

    [Test]
    public void CudaWithoutAGpuSaysWhy()
    {
        var ex = Assert.Throws<InputException>(() => DeviceSelection.Resolve("cuda", 0, 0, cudaCompiled: false));
        Assert.That(ex!.Message, Does.Contain("without CUDA").And.Contain("--device auto"));
        ex = Assert.Throws<InputException>(() => DeviceSelection.Resolve("cuda", 0, 0, cudaCompiled: true));
        Assert.That(ex!.Message, Does.Contain("no GPU visible"));
    }

    [TestCase("auto")]
    [TestCase("cuda:0")]
    public void OptionsAcceptTheDevice(string device) =>
        Assert.DoesNotThrow(() => new TrainOptions { Device = device }.Validate(1));

    [TestCase("gpu")]
    [TestCase("cuda:x")]
    [TestCase("cuda:-1")]
    public void OptionsRefuseOtherDevices(string device) =>
        Assert.That(Assert.Throws<InputException>(() => new TrainOptions { Device = device }.Validate(1))!.Message, Does.Contain("--device must be cpu, cuda, cuda:N or auto"));
}
