using MpiPipeline.Pipeline;

namespace MpiPipeline.Tests.Pipeline;

/// <summary>How a simulated send behaves.</summary>
internal enum SendSemantics
{
    /// <summary>Eager, unbounded buffering: a send completes at once; a receive blocks until its message is there.</summary>
    Buffered,

    /// <summary>
    /// Isend under a rendezvous protocol: the send is posted and the stage goes on, but the message moves only when
    /// the receiver reaches its receive; a receive blocks; a stage is done only when all its sends were received.
    /// </summary>
    NonblockingRendezvous,

    /// <summary>Blocking synchronous send (MPI_Ssend): the sender waits until the receiver reaches the matching receive.</summary>
    Synchronous,
}

/// <summary>
/// Runs every stage of a schedule as if on its own rank, with one first-in-first-out channel per direction between
/// neighbours (MPI's non-overtaking order for one tag). Every receive must find the micro-batch it expects at the
/// head of its channel. Returns null when every stage finishes, or a description of where each stage is stuck.
/// </summary>
internal static class MessagePassingSimulation
{
    public static string? Run(Schedule schedule, SendSemantics semantics)
    {
        var stages = schedule.Stages;
        var next = new int[stages];
        var forward = Enumerable.Range(0, stages).Select(_ => new Queue<int>()).ToArray();  // s -> s+1
        var backward = Enumerable.Range(0, stages).Select(_ => new Queue<int>()).ToArray(); // s -> s-1

        bool Done(int s) => next[s] == schedule[s].Count;
        ScheduleStep? Current(int s) => Done(s) ? null : schedule[s][next[s]];

        for (var progress = true; progress;)
        {
            progress = false;
            for (var s = 0; s < stages; s++)
            {
                while (Current(s) is { } step && TryAdvance(s, step))
                {
                    progress = true;
                }
            }
        }

        var stuck = Enumerable.Range(0, stages)
            .Where(s => !Done(s) || (semantics == SendSemantics.NonblockingRendezvous && (forward[s].Count > 0 || backward[s].Count > 0)))
            .Select(s => $"stage {s} at {(Done(s) ? "the end, waiting for its sends" : Current(s).ToString())}")
            .ToList();
        if (stuck.Count == 0 && forward.Concat(backward).Any(q => q.Count > 0))
        {
            return "messages sent but never received";
        }

        return stuck.Count == 0 ? null : string.Join("; ", stuck);

        bool TryAdvance(int s, ScheduleStep step)
        {
            switch (step.Kind)
            {
                case StepKind.Forward or StepKind.Backward:
                    next[s]++;
                    return true;

                case StepKind.SendForward or StepKind.SendBackward:
                    var isForward = step.Kind == StepKind.SendForward;
                    if (semantics != SendSemantics.Synchronous)
                    {
                        (isForward ? forward : backward)[s].Enqueue(step.MicroBatch);
                        next[s]++;
                        return true;
                    }

                    // Rendezvous: both sides move together when the peer waits in the matching receive.
                    var peer = isForward ? s + 1 : s - 1;
                    var matching = new ScheduleStep(isForward ? StepKind.RecvForward : StepKind.RecvBackward, step.MicroBatch);
                    if (Current(peer) is { } peerStep && peerStep.Kind == matching.Kind)
                    {
                        Assert.That(peerStep, Is.EqualTo(matching), $"stage {s} sends {step} while stage {peer} expects {peerStep}");
                        next[s]++;
                        next[peer]++;
                        return true;
                    }

                    return false;

                case StepKind.RecvForward or StepKind.RecvBackward:
                    var channel = step.Kind == StepKind.RecvForward ? forward[s - 1] : backward[s + 1];
                    if (channel.Count == 0)
                    {
                        return false;
                    }

                    Assert.That(channel.Peek(), Is.EqualTo(step.MicroBatch), $"stage {s} at {step} finds micro-batch {channel.Peek()} first");
                    channel.Dequeue();
                    next[s]++;
                    return true;

                default:
                    throw new ArgumentOutOfRangeException(nameof(step));
            }
        }
    }
}
