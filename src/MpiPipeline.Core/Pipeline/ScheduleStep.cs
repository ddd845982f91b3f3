namespace MpiPipeline.Pipeline;

/// <summary>What a stage does in one step of its schedule. Sends and receives name the neighbour by direction.</summary>
internal enum StepKind
{
    /// <summary>Receive micro-batch i's activation from stage s - 1 (absent on stage 0, which reads the input).</summary>
    RecvForward,

    /// <summary>Run this stage's layers forward on micro-batch i, keeping what the backward pass needs.</summary>
    Forward,

    /// <summary>Send micro-batch i's output activation to stage s + 1 (absent on the last stage).</summary>
    SendForward,

    /// <summary>Receive the gradient of micro-batch i's output from stage s + 1 (absent on the last stage).</summary>
    RecvBackward,

    /// <summary>Backward pass of micro-batch i; on the last stage the loss (scaled by 1/M) and its backward.</summary>
    Backward,

    /// <summary>Send the gradient of micro-batch i's input to stage s - 1 (absent on stage 0).</summary>
    SendBackward,
}

/// <summary>The two compute passes, as the clock-cycle view and the timing simulation see them.</summary>
internal enum Pass
{
    Forward,
    Backward,
}

/// <summary>
/// One step of a stage's schedule: a kind and the micro-batch it concerns. The compact text form is the one the
/// literal tables in the tests use: <c>F3</c>, <c>B3</c> for compute; <c>rF3</c>/<c>sF3</c> for receiving/sending
/// the activation of micro-batch 3, <c>rB3</c>/<c>sB3</c> for receiving/sending its gradient.
/// </summary>
internal readonly record struct ScheduleStep(StepKind Kind, int MicroBatch)
{
    public bool IsCompute => Kind is StepKind.Forward or StepKind.Backward;

    public override string ToString() => Kind switch
    {
        StepKind.RecvForward => $"rF{MicroBatch}",
        StepKind.Forward => $"F{MicroBatch}",
        StepKind.SendForward => $"sF{MicroBatch}",
        StepKind.RecvBackward => $"rB{MicroBatch}",
        StepKind.Backward => $"B{MicroBatch}",
        StepKind.SendBackward => $"sB{MicroBatch}",
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, null),
    };
}

/// <summary>A compute task in the clock-cycle view: stage <see cref="Stage"/> runs <see cref="Pass"/> of micro-batch <see cref="MicroBatch"/>.</summary>
internal readonly record struct ClockTask(int Stage, int MicroBatch, Pass Pass)
{
    /// <summary><c>1:F0</c> = stage 1 runs forward of micro-batch 0.</summary>
    public override string ToString() => $"{Stage}:{(Pass == Pass.Forward ? 'F' : 'B')}{MicroBatch}";
}
