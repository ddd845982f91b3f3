using MpiPipeline.Torch;

namespace MpiPipeline.Pipeline;

/// <summary>
/// The loss of the last pipeline stage, computed from the logits its <see cref="Stage.Forward"/> returned, so that
/// forward i and backward i stay two steps of the schedule (GPipe runs all forwards before the first backward).
/// The fused <see cref="Stage.ForwardLossBackward"/> would run the backward inside forward i.
/// <para>
/// Mean cross-entropy over a micro-batch of b samples with logits z_n and labels y_n, scaled by <c>lossScale</c>
/// (1/M with M micro-batches per mini-batch, so the M micro-batch gradients add up to the mini-batch mean's):
/// <code>L = (1/b) sum_n (logsumexp(z_n) - z_n[y_n]),   dL/dz_n = lossScale (softmax(z_n) - onehot(y_n)) / b</code>
/// as torch.nn.functional.cross_entropy and its backward; computed in double, so the gradient agrees with libtorch's
/// float kernel to rounding. Accuracy counts argmax_k z_n[k] == y_n (the first maximum on ties, as torch.argmax).
/// </para>
/// </summary>
internal static class CrossEntropy
{
    /// <summary>
    /// Returns the unscaled mean loss and the correct count of <paramref name="batch"/> samples; writes the gradient of
    /// the scaled loss with respect to the logits into <paramref name="logitGradient"/> (same length as the logits).
    /// </summary>
    public static LossResult LossAndGradient(ReadOnlySpan<float> logits, int batch, ReadOnlySpan<int> labels, float lossScale, Span<float> logitGradient)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        if (logits.Length % batch != 0 || labels.Length != batch || logitGradient.Length != logits.Length)
        {
            throw new ArgumentException(
                $"{logits.Length} logits, {labels.Length} labels and a gradient buffer of {logitGradient.Length} do not make a batch of {batch}");
        }

        var classes = logits.Length / batch;
        var lossSum = 0.0;
        var correct = 0;
        var scale = (double)lossScale / batch;
        for (var n = 0; n < batch; n++)
        {
            var z = logits.Slice(n * classes, classes);
            var g = logitGradient.Slice(n * classes, classes);
            var label = labels[n];
            if ((uint)label >= (uint)classes)
            {
                throw new ArgumentOutOfRangeException(nameof(labels), $"label {label} (sample {n}) is outside 0..{classes - 1}");
            }

            var argmax = 0;
            double max = z[0];
            for (var k = 1; k < classes; k++)
            {
                if (z[k] > max)
                {
                    max = z[k];
                    argmax = k;
                }
            }

            var sum = 0.0;
            for (var k = 0; k < classes; k++)
            {
                sum += Math.Exp(z[k] - max);
            }

            var logSumExp = max + Math.Log(sum);
            lossSum += logSumExp - z[label];
            correct += argmax == label ? 1 : 0;
            for (var k = 0; k < classes; k++)
            {
                var softmax = Math.Exp(z[k] - logSumExp);
                g[k] = (float)(scale * (softmax - (k == label ? 1 : 0)));
            }
        }

        return new LossResult((float)(lossSum / batch), correct, batch);
    }
}
