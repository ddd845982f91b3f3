using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>The same stage on cuda:0 and on the CPU: skipped, visibly, where no GPU is visible to this libtorch.</summary>
[TestFixture]
public sealed class CudaTests
{
    [SetUp]
    public void RequireCuda()
    {
        if (!TorchRuntime.CudaAvailable)
        {
            Assert.Ignore($"no CUDA device: {TorchRuntime.Describe()["CUDA"]} (build with make bridge-cuda and set MPIPIPE_TORCH_BRIDGE on a GPU machine)");
        }
    }

    [Test]
    public void CudaStageMatchesTheCpuStage()
    {
        var layers = ModelZoo.Build("cnn", FashionMnistGeometry);
        using var cpu = Stage.Create(layers, FashionMnistShape, "cpu", seed: 3);
        using var gpu = Stage.Create(layers, FashionMnistShape, "cuda:0", seed: 3);
        Assert.That(gpu.IsCuda, Is.True);
        Assert.That(gpu.Parameters.SequenceEqual(cpu.Parameters), Is.True, "same seed, same initial parameters on either device");

        var x = Uniform(8 * 784, 1);
        var labels = Labels(8, 10, 2);
        var gxCpu = new float[x.Length];
        var gxGpu = new float[x.Length];
        var lossCpu = cpu.ForwardLossBackward(x, 8, labels, 1f, gxCpu);
        var lossGpu = gpu.ForwardLossBackward(x, 8, labels, 1f, gxGpu);
        Assert.That(lossGpu.Loss, Is.EqualTo(lossCpu.Loss).Within(1e-4));
        AssertClose(gxGpu, gxCpu, 1e-4, "input gradient");
        gpu.PullGradients();
        AssertClose(gpu.Gradients, cpu.Gradients, 1e-4, "parameter gradients");

        using var adamCpu = Optimizer.Adam(cpu, 1e-3);
        using var adamGpu = Optimizer.Adam(gpu, 1e-3);
        adamCpu.Step();
        adamGpu.Step();
        gpu.PullParameters();
        AssertClose(gpu.Parameters, cpu.Parameters, 1e-4, "parameters after an Adam step");

        // Host-side changes reach the device only by a push.
        gpu.Gradients.Clear();
        gpu.PushGradients();
        gpu.ZeroGradients();
        gpu.Parameters.Fill(0);
        gpu.PushParameters();
        var output = new float[8 * 10];
        gpu.Infer(x, 8, output);
        Assert.That(output, Is.All.EqualTo(0f), "all-zero parameters pushed to the device");
    }
}
