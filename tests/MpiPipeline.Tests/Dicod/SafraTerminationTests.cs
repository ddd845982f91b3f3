using MpiPipeline.Data;
using MpiPipeline.Dicod;

namespace MpiPipeline.Tests.Dicod;

/// <summary>
/// Safra's termination detection as a state machine, on simulated runs: basic messages delivered in any order and
/// after any delay, ranks woken by them, the token passed only by passive ranks. Detection must never come while a
/// rank is active or a message is in flight, and must come once all is quiet.
/// </summary>
[TestFixture]
internal sealed class SafraTerminationTests
{
    /// <summary>A rank of the simulation: its detector and how much work it has left (0: passive).</summary>
    private sealed class SimulatedRank(int rank, int size)
    {
        public SafraTermination Detector { get; } = new(rank, size);
        public int Work { get; set; }
    }

    [TestCase(2, 1)]
    [TestCase(3, 2)]
    [TestCase(4, 3)]
    [TestCase(4, 4)]
    [TestCase(7, 5)]
    public void NeverDetectsEarlyAndAlwaysDetectsOnRandomMessageOrders(int size, int seed)
    {
        for (var run = 0; run < 200; run++)
        {
            var random = new SplitMix64((ulong)((seed * 1000) + run));
            var ranks = Enumerable.Range(0, size).Select(r => new SimulatedRank(r, size) { Work = random.NextInt(4) }).ToArray();
            var inFlight = new List<int>();                 // basic messages: destination ranks, delivered in any order
            var token = (Holder: -1, Token: default(TerminationToken));   // the token in flight to Holder, if any
            var budget = 60;                                // basic messages the run may still send: it must end
            var detected = false;
            for (var step = 0; step < 100_000 && !detected; step++)
            {
                switch (random.NextInt(4))
                {
                    case 0:
                        // An active rank works; now and then it sends a basic message to another rank.
                        var busy = ranks.Where(r => r.Work > 0).ToList();
                        if (busy.Count > 0)
                        {
                            var sender = busy[random.NextInt(busy.Count)];
                            if (budget > 0 && random.NextInt(2) == 0)
                            {
                                var to = random.NextInt(size);
                                inFlight.Add(to);
                                sender.Detector.Sent();
                                budget--;
                            }

                            sender.Work--;
                        }

                        break;
                    case 1:
                        // Any message in flight may arrive now, whatever was sent after it.
                        if (inFlight.Count > 0)
                        {
                            var i = random.NextInt(inFlight.Count);
                            var receiver = ranks[inFlight[i]];
                            inFlight.RemoveAt(i);
                            receiver.Detector.Received();
                            receiver.Work += 1 + random.NextInt(3);
                        }

                        break;
                    case 2:
                        if (token.Holder >= 0)
                        {
                            ranks[token.Holder].Detector.TokenArrived(token.Token);
                            token = (-1, default);
                        }

                        break;
                    default:
                        var r = random.NextInt(size);
                        if (ranks[r].Work == 0 && ranks[r].Detector.WhenPassive() is { } next)
                        {
                            Assert.That(token.Holder, Is.EqualTo(-1), "one token at a time");
                            token = (ranks[r].Detector.Next, next);
                        }

                        if (ranks[0].Detector.Terminated)
                        {
                            Assert.That(ranks.All(x => x.Work == 0), Is.True, $"run {run}: termination detected while a rank is active");
                            Assert.That(inFlight, Is.Empty, $"run {run}: termination detected with {inFlight.Count} message(s) in flight");
                            detected = true;
                        }

                        break;
                }
            }

            Assert.That(detected, Is.True, $"run {run}: all quiet but termination never detected");
        }
    }

    /// <summary>
    /// The case counting alone gets wrong. The token has passed ranks 1 and 2 (passive, counters 0) and waits at rank 3
    /// (active). Rank 3 sends to 1, which wakes and sends to 2, which wakes, sends to 3 and stays active; rank 3
    /// receives, goes passive and forwards. Its counter is +1 - 1 = 0 and the visited ranks' counters were read
    /// before they moved: q + c_0 = 0 while rank 2 works. The token is black (rank 3 received), so rank 0 probes
    /// again; that probe meets ranks 1 and 2 black, and only the third, with all quiet, detects.
    /// </summary>
    [Test]
    public void CountsThatBalanceWhileARankWorksDoNotEndTheRun()
    {
        var d = Enumerable.Range(0, 4).Select(r => new SafraTermination(r, 4)).ToArray();

        TerminationToken Pass(int rank, TerminationToken token)
        {
            d[rank].TokenArrived(token);
            return d[rank].WhenPassive() ?? throw new AssertionException($"passive rank {rank} forwards the token");
        }

        var probe = d[0].WhenPassive() ?? throw new AssertionException("passive rank 0 starts a probe");
        var token = Pass(2, Pass(1, probe));
        d[3].TokenArrived(token);                 // rank 3 is active: it keeps the token
        d[3].Sent();                              // 3 -> 1
        d[1].Received();
        d[1].Sent();                              // 1 -> 2, then 1 is passive again
        d[2].Received();
        d[2].Sent();                              // 2 -> 3; rank 2 stays active
        d[3].Received();
        token = d[3].WhenPassive()!.Value;        // rank 3 done
        Assert.That(token.Count + d[0].Counter, Is.EqualTo(0), "the counts balance...");
        Assert.That(token.Black, Is.True, "...but rank 3 received a message since the token came");
        d[0].TokenArrived(token);
        var second = d[0].WhenPassive();
        Assert.That(d[0].Terminated, Is.False, "rank 2 is still active");
        Assert.That(second, Is.EqualTo(new TerminationToken(0, false)));

        // Rank 2 finishes now. The second probe finds ranks 1 and 2 black (they received), the third finds all quiet.
        token = Pass(3, Pass(2, Pass(1, second!.Value)));
        Assert.That(token, Is.EqualTo(new TerminationToken(0, true)));
        d[0].TokenArrived(token);
        var third = d[0].WhenPassive();
        Assert.That(d[0].Terminated, Is.False);
        token = Pass(3, Pass(2, Pass(1, third!.Value)));
        Assert.That(token, Is.EqualTo(new TerminationToken(0, false)));
        d[0].TokenArrived(token);
        Assert.That(d[0].WhenPassive(), Is.Null);
        Assert.That(d[0].Terminated, Is.True);
        Assert.That(d[0].Probes, Is.EqualTo(3));
    }

    /// <summary>A message still in flight: every rank passive and white, but q + c_0 = 1: no detection.</summary>
    [Test]
    public void AMessageInFlightKeepsTheRunAlive()
    {
        var d = Enumerable.Range(0, 3).Select(r => new SafraTermination(r, 3)).ToArray();
        d[2].Sent();                              // 2 -> 0, not delivered yet
        var token = d[0].WhenPassive()!.Value;
        d[1].TokenArrived(token);
        token = d[1].WhenPassive()!.Value;
        d[2].TokenArrived(token);
        token = d[2].WhenPassive()!.Value;
        Assert.That(token, Is.EqualTo(new TerminationToken(1, false)));
        d[0].TokenArrived(token);
        Assert.That(d[0].WhenPassive(), Is.Not.Null);
        Assert.That(d[0].Terminated, Is.False);
    }

    [Test]
    public void OneRankTerminatesWhenPassive()
    {
        var alone = new SafraTermination(0, 1);
        Assert.That(alone.WhenPassive(), Is.Null);
        Assert.That(alone.Terminated, Is.True);
    }

    [Test]
    public void ActiveRanksKeepTheToken()
    {
        var d = new SafraTermination(2, 3);
        Assert.That(d.WhenPassive(), Is.Null, "no token yet");
        d.TokenArrived(new TerminationToken(0, false));
        Assert.That(d.HoldsToken, Is.True);
        Assert.That(() => d.TokenArrived(new TerminationToken(0, false)), Throws.InvalidOperationException);
        Assert.That(d.WhenPassive(), Is.EqualTo(new TerminationToken(0, false)));
        Assert.That(d.Next, Is.EqualTo(0));
    }
}
