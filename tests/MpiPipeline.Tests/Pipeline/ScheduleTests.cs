using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Tests.Pipeline;

/// <summary>
/// The schedules against tables written out by hand (as torchgpipe tests <c>clock_cycles</c>), then properties over
/// S = 1..6 stages and M = 1..10 micro-batches. Notation: F3/B3 compute, rF3/sF3 receive/send the activation of
/// micro-batch 3, rB3/sB3 receive/send its gradient; clock cycles as "stage:task", cycles separated by " | ".
/// </summary>
[TestFixture]
internal sealed class ScheduleTests
{
    private static string[] Steps(Schedule schedule, bool withCommunication) =>
        Enumerable.Range(0, schedule.Stages).Select(s => Schedule.Format(schedule[s], withCommunication)).ToArray();

    // ---- literal tables, compute steps only ----

    [Test]
    public void GPipeComputeTables()
    {
        Assert.That(Steps(Schedule.GPipe(2, 3), false), Is.EqualTo(new[]
        {
            "F0 F1 F2 B2 B1 B0",
            "F0 F1 F2 B2 B1 B0",
        }));
        Assert.That(Steps(Schedule.GPipe(3, 4), false), Is.EqualTo(new[]
        {
            "F0 F1 F2 F3 B3 B2 B1 B0",
            "F0 F1 F2 F3 B3 B2 B1 B0",
            "F0 F1 F2 F3 B3 B2 B1 B0",
        }));
        Assert.That(Steps(Schedule.GPipe(4, 2), false), Is.EqualTo(new[]
        {
            "F0 F1 B1 B0",
            "F0 F1 B1 B0",
            "F0 F1 B1 B0",
            "F0 F1 B1 B0",
        }));
    }

    [Test]
    public void OneFOneBComputeTables()
    {
        // Stage s: warm-up of min(S - s - 1, M) forwards | steady F, B pairs | cool-down backwards.
        Assert.That(Steps(Schedule.OneFOneB(2, 3), false), Is.EqualTo(new[]
        {
            "F0 F1 B0 F2 B1 B2", // F0 | F1 B0, F2 B1 | B2
            "F0 B0 F1 B1 F2 B2", // (none) | F0 B0, F1 B1, F2 B2 | (none)
        }));
        Assert.That(Steps(Schedule.OneFOneB(3, 4), false), Is.EqualTo(new[]
        {
            "F0 F1 F2 B0 F3 B1 B2 B3", // F0 F1 | F2 B0, F3 B1 | B2 B3
            "F0 F1 B0 F2 B1 F3 B2 B3", // F0 | F1 B0, F2 B1, F3 B2 | B3
            "F0 B0 F1 B1 F2 B2 F3 B3",
        }));
        Assert.That(Steps(Schedule.OneFOneB(4, 2), false), Is.EqualTo(new[]
        {
            "F0 F1 B0 B1", // warm-up min(3, 2) = 2: no steady state
            "F0 F1 B0 B1", // warm-up min(2, 2) = 2
            "F0 F1 B0 B1", // F0 | F1 B0 | B1
            "F0 B0 F1 B1",
        }));
    }

    // ---- literal tables with the sends and receives ----

    [Test]
    public void GPipeTablesWithCommunication()
    {
        Assert.That(Steps(Schedule.GPipe(2, 3), true), Is.EqualTo(new[]
        {
            "F0 sF0 F1 sF1 F2 sF2 rB2 B2 rB1 B1 rB0 B0",
            "rF0 F0 rF1 F1 rF2 F2 B2 sB2 B1 sB1 B0 sB0",
        }));
        Assert.That(Steps(Schedule.GPipe(3, 4), true), Is.EqualTo(new[]
        {
            "F0 sF0 F1 sF1 F2 sF2 F3 sF3 rB3 B3 rB2 B2 rB1 B1 rB0 B0",
            "rF0 F0 sF0 rF1 F1 sF1 rF2 F2 sF2 rF3 F3 sF3 rB3 B3 sB3 rB2 B2 sB2 rB1 B1 sB1 rB0 B0 sB0",
            "rF0 F0 rF1 F1 rF2 F2 rF3 F3 B3 sB3 B2 sB2 B1 sB1 B0 sB0",
        }));
        Assert.That(Steps(Schedule.GPipe(4, 2), true), Is.EqualTo(new[]
        {
            "F0 sF0 F1 sF1 rB1 B1 rB0 B0",
            "rF0 F0 sF0 rF1 F1 sF1 rB1 B1 sB1 rB0 B0 sB0",
            "rF0 F0 sF0 rF1 F1 sF1 rB1 B1 sB1 rB0 B0 sB0",
            "rF0 F0 rF1 F1 B1 sB1 B0 sB0",
        }));
    }

    [Test]
    public void OneFOneBTablesWithCommunication()
    {
        Assert.That(Steps(Schedule.OneFOneB(2, 3), true), Is.EqualTo(new[]
        {
            "F0 sF0 F1 sF1 rB0 B0 F2 sF2 rB1 B1 rB2 B2",
            "rF0 F0 B0 sB0 rF1 F1 B1 sB1 rF2 F2 B2 sB2",
        }));
        Assert.That(Steps(Schedule.OneFOneB(3, 4), true), Is.EqualTo(new[]
        {
            "F0 sF0 F1 sF1 F2 sF2 rB0 B0 F3 sF3 rB1 B1 rB2 B2 rB3 B3",
            "rF0 F0 sF0 rF1 F1 sF1 rB0 B0 sB0 rF2 F2 sF2 rB1 B1 sB1 rF3 F3 sF3 rB2 B2 sB2 rB3 B3 sB3",
            "rF0 F0 B0 sB0 rF1 F1 B1 sB1 rF2 F2 B2 sB2 rF3 F3 B3 sB3",
        }));
        Assert.That(Steps(Schedule.OneFOneB(4, 2), true), Is.EqualTo(new[]
        {
            "F0 sF0 F1 sF1 rB0 B0 rB1 B1",
            "rF0 F0 sF0 rF1 F1 sF1 rB0 B0 sB0 rB1 B1 sB1",
            "rF0 F0 sF0 rF1 F1 sF1 rB0 B0 sB0 rB1 B1 sB1",
            "rF0 F0 B0 sB0 rF1 F1 B1 sB1",
        }));
    }

    [Test]
    public void OneStageHasNoCommunication()
    {
        Assert.That(Schedule.Format(Schedule.GPipe(1, 3)[0]), Is.EqualTo("F0 F1 F2 B2 B1 B0"));
        Assert.That(Schedule.Format(Schedule.OneFOneB(1, 3)[0]), Is.EqualTo("F0 B0 F1 B1 F2 B2"));
    }

    // ---- clock cycles (unit-time forward and backward), literal ----

    [Test]
    public void GPipeClockCycles()
    {
        Assert.That(Schedule.Format(Schedule.GPipe(2, 3).ClockCycles()), Is.EqualTo(
            "0:F0 | 0:F1 1:F0 | 0:F2 1:F1 | 1:F2 | 1:B2 | 0:B2 1:B1 | 0:B1 1:B0 | 0:B0"));
        Assert.That(Schedule.Format(Schedule.GPipe(3, 2).ClockCycles()), Is.EqualTo(
            "0:F0 | 0:F1 1:F0 | 1:F1 2:F0 | 2:F1 | 2:B1 | 1:B1 2:B0 | 0:B1 1:B0 | 0:B0"));
    }

    [Test]
    public void OneFOneBClockCycles()
    {
        Assert.That(Schedule.Format(Schedule.OneFOneB(2, 3).ClockCycles()), Is.EqualTo(
            "0:F0 | 0:F1 1:F0 | 1:B0 | 0:B0 1:F1 | 0:F2 1:B1 | 0:B1 1:F2 | 1:B2 | 0:B2"));
        Assert.That(Schedule.Format(Schedule.OneFOneB(3, 4).ClockCycles()), Is.EqualTo(
            "0:F0 | 0:F1 1:F0 | 0:F2 1:F1 2:F0 | 2:B0 | 1:B0 2:F1 | 0:B0 1:F2 2:B1 | 0:F3 1:B1 2:F2 | " +
            "0:B1 1:F3 2:B2 | 1:B2 2:F3 | 0:B2 2:B3 | 1:B3 | 0:B3"));
    }

    // ---- validation ----

    [TestCase(0, 4)]
    [TestCase(-1, 4)]
    [TestCase(2, 0)]
    [TestCase(2, -3)]
    public void NonPositiveStagesOrMicroBatchesAreInputErrors(int stages, int microBatches)
    {
        Assert.Throws<InputException>(() => Schedule.GPipe(stages, microBatches));
        var error = Assert.Throws<InputException>(() => Schedule.OneFOneB(stages, microBatches))!;
        Assert.That(error.SameOnEveryRank, Is.True);
        Assert.That(error.Message, Does.Contain("at least 1"));
    }

    // ---- properties over S = 1..6, M = 1..10 ----

    [Test, Combinatorial]
    public void EveryStageRunsEachForwardAndBackwardOnceForwardFirst(
        [Values] ScheduleKind kind, [Range(1, 6)] int stages, [Range(1, 10)] int microBatches)
    {
        var schedule = Schedule.Create(kind, stages, microBatches);
        for (var s = 0; s < stages; s++)
        {
            var steps = schedule[s];
            for (var i = 0; i < microBatches; i++)
            {
                var forwards = IndexesOf(steps, new ScheduleStep(StepKind.Forward, i));
                var backwards = IndexesOf(steps, new ScheduleStep(StepKind.Backward, i));
                Assert.That(forwards, Has.Count.EqualTo(1), $"stage {s}: F{i}");
                Assert.That(backwards, Has.Count.EqualTo(1), $"stage {s}: B{i}");
                Assert.That(forwards[0], Is.LessThan(backwards[0]), $"stage {s}: F{i} before B{i}");
            }

            Assert.That(steps.Count(x => x.IsCompute), Is.EqualTo(2 * microBatches));
            Assert.That(steps.All(x => x.MicroBatch >= 0 && x.MicroBatch < microBatches));
        }
    }

    [Test, Combinatorial]
    public void EverySendHasTheMatchingReceiveOnTheNeighbour(
        [Values] ScheduleKind kind, [Range(1, 6)] int stages, [Range(1, 10)] int microBatches)
    {
        var schedule = Schedule.Create(kind, stages, microBatches);
        Assert.That(MicroBatchesOf(schedule[0], StepKind.RecvForward), Is.Empty, "stage 0 reads the input");
        Assert.That(MicroBatchesOf(schedule[0], StepKind.SendBackward), Is.Empty, "stage 0 has nobody to send gradients to");
        Assert.That(MicroBatchesOf(schedule[stages - 1], StepKind.SendForward), Is.Empty, "the last stage computes the loss");
        Assert.That(MicroBatchesOf(schedule[stages - 1], StepKind.RecvBackward), Is.Empty, "the last stage starts backward from the loss");
        for (var s = 0; s + 1 < stages; s++)
        {
            // Same micro-batches in the same order: one tag per direction is enough.
            var sent = MicroBatchesOf(schedule[s], StepKind.SendForward);
            Assert.That(sent, Is.EqualTo(Enumerable.Range(0, microBatches)), $"stage {s} sends each activation once");
            Assert.That(MicroBatchesOf(schedule[s + 1], StepKind.RecvForward), Is.EqualTo(sent), $"stage {s + 1} receives them in order");
            Assert.That(MicroBatchesOf(schedule[s], StepKind.RecvBackward), Is.EqualTo(MicroBatchesOf(schedule[s + 1], StepKind.SendBackward)),
                $"gradients from stage {s + 1} to {s}");
            Assert.That(MicroBatchesOf(schedule[s], StepKind.RecvBackward), Is.EquivalentTo(Enumerable.Range(0, microBatches)));
        }

        for (var s = 0; s < stages; s++)
        {
            // Each compute step sits between its own receive and send.
            var steps = schedule[s];
            for (var k = 0; k < steps.Count; k++)
            {
                var step = steps[k];
                if (step.Kind is StepKind.RecvForward or StepKind.RecvBackward)
                {
                    Assert.That(steps[k + 1], Is.EqualTo(step with { Kind = step.Kind == StepKind.RecvForward ? StepKind.Forward : StepKind.Backward }));
                }
                else if (step.Kind is StepKind.SendForward or StepKind.SendBackward)
                {
                    Assert.That(steps[k - 1], Is.EqualTo(step with { Kind = step.Kind == StepKind.SendForward ? StepKind.Forward : StepKind.Backward }));
                }
            }
        }
    }

    [Test, Combinatorial]
    public void PeakInFlight([Values] ScheduleKind kind, [Range(1, 6)] int stages, [Range(1, 10)] int microBatches)
    {
        var schedule = Schedule.Create(kind, stages, microBatches);
        for (var s = 0; s < stages; s++)
        {
            var expected = kind == ScheduleKind.GPipe ? microBatches : Math.Min(stages - s, microBatches);
            Assert.That(Schedule.PeakInFlight(schedule[s]), Is.EqualTo(expected), $"stage {s}");
        }
    }

    [Test, Combinatorial]
    public void CompletesWithNonblockingSends(
        [Values] ScheduleKind kind, [Values(SendSemantics.Buffered, SendSemantics.NonblockingRendezvous)] SendSemantics semantics,
        [Range(1, 6)] int stages, [Range(1, 10)] int microBatches) =>
        Assert.That(MessagePassingSimulation.Run(Schedule.Create(kind, stages, microBatches), semantics), Is.Null);

    /// <summary>
    /// Pins why the executor must not use blocking synchronous sends for 1F1B: in the steady state stage S-2 sends
    /// F1 forward while stage S-1 sends B0 back, and each waits for the other to receive. GPipe survives them.
    /// </summary>
    [Test, Combinatorial]
    public void WithBlockingSynchronousSendsOnlyGPipeCompletes([Range(1, 6)] int stages, [Range(1, 10)] int microBatches)
    {
        Assert.That(MessagePassingSimulation.Run(Schedule.GPipe(stages, microBatches), SendSemantics.Synchronous), Is.Null);
        var oneFOneB = MessagePassingSimulation.Run(Schedule.OneFOneB(stages, microBatches), SendSemantics.Synchronous);
        if (stages == 1 || microBatches == 1)
        {
            Assert.That(oneFOneB, Is.Null);
        }
        else
        {
            Assert.That(oneFOneB, Does.Contain($"stage {stages - 2} at sF1").And.Contain($"stage {stages - 1} at sB0"));
        }
    }

    [Test, Combinatorial]
    public void ClockCyclesRunEveryTaskOnceIn2TimesMPlusSMinus1Cycles(
        [Values] ScheduleKind kind, [Range(1, 6)] int stages, [Range(1, 10)] int microBatches)
    {
        var cycles = Schedule.Create(kind, stages, microBatches).ClockCycles();
        Assert.That(cycles, Has.Count.EqualTo(2 * (microBatches + stages - 1)));
        var tasks = cycles.SelectMany(c => c).ToList();
        Assert.That(tasks, Is.Unique);
        Assert.That(tasks, Has.Count.EqualTo(2 * stages * microBatches));
        Assert.That(cycles.All(c => c.Select(t => t.Stage).Distinct().Count() == c.Count), "a stage runs one task per cycle");
    }

    private static List<int> IndexesOf(IReadOnlyList<ScheduleStep> steps, ScheduleStep step) =>
        Enumerable.Range(0, steps.Count).Where(k => steps[k] == step).ToList();

    private static List<int> MicroBatchesOf(IReadOnlyList<ScheduleStep> steps, StepKind kind) =>
        steps.Where(s => s.Kind == kind).Select(s => s.MicroBatch).ToList();
}
