using MpiPipeline.Exchange;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary><see cref="StepCounters"/>: every field takes part in + and -, and an epoch's counters add the exchange's.</summary>
[TestFixture]
internal sealed class StepCountersTests
{
    private static readonly StepCounters Some = new()
    {
        Steps = 1, Samples = 2, ForwardSeconds = 3, BackwardSeconds = 4, ComputeSeconds = 5, ReceiveWaitSeconds = 6,
        SendSeconds = 7, CommunicationSeconds = 8, DataSeconds = 9, EvaluationSeconds = 10, StepSeconds = 11, PointToPointBytes = 12,
    };

    [Test]
    public void SumLessASnapshotIsWhatCameAfterIt()
    {
        var later = Some + Some + Some;
        Assert.That(later - Some, Is.EqualTo(Some + Some));
        Assert.That(later - later, Is.EqualTo(default(StepCounters)));
        Assert.That((later - Some).PointToPointBytes, Is.EqualTo(24));
    }

    [Test]
    public void EpochOfOneRankAddsTheExchangeCounters()
    {
        var exchange = new ExchangeCounters();
        exchange.AddRound(payloadBytes: 1000, ranks: 4, seconds: 0.5);
        var epoch = Some.Epoch(exchange);
        Assert.That(epoch, Is.EqualTo(new EpochCounters(1, 1500 + 12, 1000 + 12, 5, 8.5)));
    }
}
