using System.Diagnostics;
using MpiPipeline.Benchmarks;
using MpiPipeline.Torch;

namespace MpiPipeline.Pipeline;

/// <summary>One layer of a model as the pipeline sees it: its shapes per sample, parameters and (when measured) cost.</summary>
/// <param name="Seconds">Forward + backward time of the layer on one micro-batch; NaN when not measured.</param>
internal sealed record LayerProfile(int Index, LayerSpec Layer, int[] InputShape, int[] OutputShape, long Parameters, double Seconds);

/// <summary>
/// Builds the stage a rank holds from the whole model's layer list (a ModelZoo list) and its <see cref="LayerRange"/>.
/// <para>
/// Shapes: every rank computes the shape of every layer itself (<see cref="Profile"/> builds the layers one at a time
/// on the CPU, each fed the previous one's output shape), so the input shape of stage s is the output shape of
/// stage s - 1 without any message between ranks, and every receive knows its size before the first micro-batch.
/// </para>
/// <para>
/// Initial parameters: the bridge seeds a stage's initialization with the stage's own seed, so a slice built alone
/// draws other numbers than the same layers inside the whole model. Pipelined training must start where single-rank
/// training starts, so every rank builds the whole model once on the CPU with the run's seed (exactly as the
/// single-rank trainer does) and copies its slice's range of the flat parameter buffer into its stage: the flat
/// buffers of consecutive slices tile the whole model's in layer order. The whole model is freed right after.
/// </para>
/// </summary>
internal static class StageBuilder
{
    private const int WarmUpRepeats = 3;
    private const int TimedRepeats = 7;

    /// <summary>
    /// Each layer's shapes and parameter count; with <paramref name="timingMicroBatch"/> also its forward + backward
    /// time on a micro-batch of that many samples (median of a few runs, after a warm-up).
    /// </summary>
    public static IReadOnlyList<LayerProfile> Profile(IReadOnlyList<LayerSpec> layers, int[] sampleShape, int? timingMicroBatch = null)
    {
        var singles = new List<Stage>(layers.Count);
        try
        {
            var shape = sampleShape;
            foreach (var layer in layers)
            {
                singles.Add(Stage.Create([layer], shape, "cpu", seed: singles.Count));
                shape = singles[^1].SampleOutputShape;
            }

            var seconds = timingMicroBatch is int batch ? Time(singles, batch) : null;
            return [.. singles.Select((single, l) => new LayerProfile(
                l, layers[l], single.SampleInputShape, single.SampleOutputShape, single.ParameterCount, seconds?[l] ?? double.NaN))];
        }
        finally
        {
            singles.ForEach(single => single.Dispose());
        }
    }

    /// <summary>
    /// The stage of layers <paramref name="range"/> on <paramref name="device"/>, its parameters equal to those layers'
    /// in the whole model created from <paramref name="seed"/> (see the class comment).
    /// </summary>
    public static Stage Create(IReadOnlyList<LayerSpec> layers, IReadOnlyList<LayerProfile> profiles, int[] sampleShape,
        LayerRange range, string device, long seed)
    {
        using var whole = Stage.Create(layers, sampleShape, "cpu", seed);
        var total = profiles.Sum(p => p.Parameters);
        if (total != whole.ParameterCount)
        {
            throw new InvalidOperationException(
                $"internal: the layers have {total} parameters one by one but {whole.ParameterCount} as one model");
        }

        var offset = profiles.Take(range.Start).Sum(p => p.Parameters);
        var slice = layers.Skip(range.Start).Take(range.Count).ToList();
        var stage = Stage.Create(slice, profiles[range.Start].InputShape, device, seed);
        try
        {
            var expected = profiles.Skip(range.Start).Take(range.Count).Sum(p => p.Parameters);
            if (stage.ParameterCount != expected)
            {
                throw new InvalidOperationException(
                    $"internal: layers {range} have {stage.ParameterCount} parameters as a stage but {expected} one by one");
            }

            whole.Parameters.Slice(checked((int)offset), checked((int)stage.ParameterCount)).CopyTo(stage.Parameters);
            stage.PushParameters();
            return stage;
        }
        catch
        {
            stage.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Forward (keeping the graph, input gradient wanted) and backward of one micro-batch through each layer, in
    /// rounds that visit every layer once (so a disturbance of the machine hits all layers alike); the median per layer.
    /// </summary>
    private static double[] Time(List<Stage> singles, int batch)
    {
        var buffers = singles.Select(layer =>
        {
            var input = new float[batch * layer.SampleInputSize];
            for (var i = 0; i < input.Length; i++)
            {
                input[i] = MathF.Sin(0.37f * i);
            }

            var output = new float[batch * layer.SampleOutputSize];
            var outputGradient = new float[output.Length];
            Array.Fill(outputGradient, 1f / output.Length);
            return (Input: input, Output: output, OutputGradient: outputGradient, InputGradient: new float[input.Length]);
        }).ToArray();
        var times = new double[singles.Count][];
        for (var l = 0; l < singles.Count; l++)
        {
            times[l] = new double[TimedRepeats];
        }

        for (var round = 0; round < WarmUpRepeats + TimedRepeats; round++)
        {
            for (var l = 0; l < singles.Count; l++)
            {
                var (input, output, outputGradient, inputGradient) = buffers[l];
                var clock = Stopwatch.StartNew();
                singles[l].Forward(0, input, batch, output, requireInputGradient: true);
                singles[l].Backward(0, outputGradient, inputGradient);
                if (round >= WarmUpRepeats)
                {
                    times[l][round - WarmUpRepeats] = clock.Elapsed.TotalSeconds;
                }
            }
        }

        return [.. times.Select(t => SampleStatistics.Median(t))];
    }
}
