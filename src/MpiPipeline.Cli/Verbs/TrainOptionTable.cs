using System.CommandLine.Parsing;
using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.DataParallel;
using MpiPipeline.Engines;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Pipeline;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary>The options of <c>train</c>, one row per <see cref="TrainOptions"/> field; <c>compare</c> takes the common ones (<see cref="Common"/>).</summary>
internal static class TrainOptionTable
{
    public static OptionTable<TrainOptions> Create()
    {
        var defaults = new TrainOptions();
        IReadOnlyList<(string, ScheduleKind?)> schedules = [("gpipe", ScheduleKind.GPipe), ("1f1b", ScheduleKind.OneFOneB)];
        IReadOnlyList<(string, PartitionCost?)> partitions = [("time", PartitionCost.Time), ("parameters", PartitionCost.Parameters)];
        var t = new OptionTable<TrainOptions>();
        t.Add(TrainFlags.Algorithm, string.Join(" | ", AlgorithmRegistry.Names), o => o.Algorithm, (o, v) => o with { Algorithm = v }).AcceptOnlyFromAmong([.. AlgorithmRegistry.Names]);
        t.Add(TrainFlags.Model, string.Join(" | ", MpiPipeline.Torch.ModelZoo.Names), o => o.Model, (o, v) => o with { Model = v });
        t.Add(TrainFlags.Epochs, "Passes over the training set.", o => o.Epochs, (o, v) => o with { Epochs = v });
        t.Add(TrainFlags.Batch, "Mini-batch: synchronous algorithms sum it over the workers (each takes batch / workers); dasgd: each worker computes every gradient (one update) on a whole batch of its own.", o => o.Batch, (o, v) => o with { Batch = v });
        t.Add(TrainFlags.LearningRate, "Learning rate eta.", o => o.LearningRate, (o, v) => o with { LearningRate = v });
        t.Choice(TrainFlags.Optimizer, "sgd | adam", [("sgd", OptimizerKind.Sgd), ("adam", OptimizerKind.Adam)], o => o.Optimizer, (o, v) => o with { Optimizer = v });
        t.Add(TrainFlags.Momentum, "SGD momentum.", o => o.Momentum, (o, v) => o with { Momentum = v });
        t.Add(TrainFlags.Nesterov, "Nesterov momentum (SGD).", o => o.Nesterov, (o, v) => o with { Nesterov = v });
        t.Add(TrainFlags.WeightDecay, "L2 weight decay.", o => o.WeightDecay, (o, v) => o with { WeightDecay = v });
        t.Add(TrainFlags.Tau, $"tau: local steps between model averagings ({Owners(TrainFlags.Tau)}).", o => o.Tau, (o, v) => o with { Tau = v });
        t.Add(TrainFlags.Redundancy, $"q: data chunks each worker holds ({Owners(TrainFlags.Redundancy)}), 1..workers.", o => o.Redundancy, (o, v) => o with { Redundancy = v });
        var chunked = string.Join(", ", AlgorithmRegistry.All.Where(a => a.DefaultSplit == DataSplit.Chunks).Select(a => a.Name));
        t.Choice(TrainFlags.Split, "shuffle (i.i.d. slices of one permutation) | chunks (worker j holds chunk j) | chunks-by-class (the same chunks cut from the samples " +
            $"sorted by label: each holds few classes, non-i.i.d.); default: chunks for {chunked}, shuffle otherwise.",
            [.. DataSplitNames.All.Select(s => (s.Name, (DataSplit?)s.Split))], o => o.Split, (o, v) => o with { Split = v });
        t.Add(TrainFlags.FailRank, $"{Owners(TrainFlags.FailRank)}: this worker fails (emulated fail-stop) ...", o => o.FailRank, (o, v) => o with { FailRank = v });
        t.Add(TrainFlags.FailStep, "... at this step.", o => o.FailStep, (o, v) => o with { FailStep = v });
        t.Add(TrainFlags.Seed, "Seed of initialization, shuffling and dropout (with rank and step).", o => o.Seed, (o, v) => o with { Seed = v });
        t.Add(TrainFlags.Threads, "libtorch threads per rank (default: cores on the node / ranks on the node).", o => o.Threads, (o, v) => o with { Threads = v });
        t.Add(TrainFlags.Device, "cpu | cuda (one GPU per rank: cuda:<node-local rank mod GPUs>) | cuda:N | auto (cuda where usable, else cpu)", o => o.Device, (o, v) => o with { Device = v });
        t.Add(TrainFlags.Exchange, "How replicas average: " + string.Join(" | ", ExchangeRegistry.All.Select(e => $"{e.Name} ({e.Help})")), o => o.Exchange, (o, v) => o with { Exchange = v })
            .AcceptOnlyFromAmong([.. ExchangeRegistry.All.Select(e => e.Name)]);
        t.Add(TrainFlags.DataSet, "What to train on: " + string.Join(" | ", DataSetRegistry.Names) + "; the model is built for its sample shape and classes " +
            "(KIND:DIR reads the files in DIR: see the README's \"Data sets\").",
            o => o.DataSet, (o, v) => o with { DataSet = v });
        t.Add(TrainFlags.Data, $"Directory of the {FashionMnist.Registration.Name} files (default {FashionMnist.DefaultDirectory}); a KIND:DIR data set names its own.", o => o.DataDirectory, (o, v) => o with { DataDirectory = v });
        t.Add(TrainFlags.TrainSamples, "Use only the first N training samples.", o => o.TrainSamples, (o, v) => o with { TrainSamples = v });
        t.Add(TrainFlags.TestSamples, "Use only the first N test samples.", o => o.TestSamples, (o, v) => o with { TestSamples = v });
        t.Add(TrainFlags.MaxSteps, "Stop after this many steps in total.", o => o.MaxSteps, (o, v) => o with { MaxSteps = v });
        t.Add(TrainFlags.TrainLossEvery, $"{Owners(TrainFlags.TrainLossEvery)}: every N steps and after the last, the (average) model's loss on the whole training set (trainLossCurve in the results).",
            o => o.TrainLossEvery, (o, v) => o with { TrainLossEvery = v });
        t.Add(TrainFlags.CurveEvery, "Steps between two points of the loss curve.", o => o.CurveEvery, (o, v) => o with { CurveEvery = v });
        t.Add(TrainFlags.Stages, $"{Owners(TrainFlags.Stages)}: S, stages (default: world size / D).", o => o.Stages, (o, v) => o with { Stages = v }).Aliases.Add(TrainFlags.StagesAlias);
        t.Add(TrainFlags.Replicas, $"{Owners(TrainFlags.Replicas)}: D, data-parallel replicas of each stage; S * D = world size (default: world size / S).", o => o.Replicas, (o, v) => o with { Replicas = v })
            .Aliases.Add(TrainFlags.ReplicasAlias);
        t.Add(TrainFlags.MicroBatches, $"{Owners(TrainFlags.MicroBatches)}: M, micro-batches per mini-batch (each replica's batch / M samples each; default {defaults.EffectiveMicroBatches}).",
            o => o.MicroBatches, (o, v) => o with { MicroBatches = v });
        t.Choice(TrainFlags.Schedule, $"{Owners(TrainFlags.Schedule)}: gpipe | 1f1b (default {OptionTable<TrainOptions>.NameOf(schedules, defaults.EffectiveSchedule)}).",
            schedules, o => o.Schedule, (o, v) => o with { Schedule = v });
        t.Add(TrainFlags.Balance, $"{Owners(TrainFlags.Balance)}: layers per stage, e.g. 3,2,2 (default: automatic partition).", o => o.Balance, (o, v) => o with { Balance = v });
        t.Choice(TrainFlags.Partition, $"{Owners(TrainFlags.Partition)}: automatic partition by measured layer 'time' (default) or by 'parameters'.",
            partitions, o => o.PartitionBy, (o, v) => o with { PartitionBy = v });
        t.Add(TrainFlags.Plan, $"{Owners(TrainFlags.Plan)}: FILE (a plan of mpipipe plan) | data (every layer split along samples) | model (a channel split R ways on every layer that takes one, samples elsewhere) | auto (rank 0 runs mpipipe plan's search at start-up, shared-memory costs, and broadcasts the plan); default data.",
            o => o.Plan, (o, v) => o with { Plan = v });
        t.Add(TrainFlags.Trace, $"{Owners(TrainFlags.Trace)}: write a Chrome trace (chrome://tracing, Perfetto) of every rank to this file.", o => o.TracePath, (o, v) => o with { TracePath = v });
        t.Add(TrainFlags.NoOverlap, $"{Owners(TrainFlags.NoOverlap)}: average the gradients with one Allreduce after backward, not in buckets overlapped with backward (the default on CPU).",
            o => o.NoOverlap, (o, v) => o with { NoOverlap = v });
        t.Add(TrainFlags.CudaAwareMpi, $"{Owners(TrainFlags.CudaAwareMpi)}: on CUDA, hand the device gradients to MPI directly instead of staging them through pinned host memory (the MPI library must be CUDA-aware; automatic where MPIX_Query_cuda_support() says so).",
            o => o.CudaAwareMpi, (o, v) => o with { CudaAwareMpi = v });
        t.Add(TrainFlags.BucketMegabytes, $"{Owners(TrainFlags.BucketMegabytes)}: gradient bucket size of the overlapped Allreduce, in MB (default {BucketPlan.DefaultMegabytes}, as DDP).",
            o => o.BucketMegabytes, (o, v) => o with { BucketMegabytes = v });
        t.Add(TrainFlags.Compress, $"{Owners(TrainFlags.Compress)}: gradients on the wire: {CompressorRegistry.Help}; each gradient bucket encoded as backward finishes it and sent with Iallgather (sizes) + Iallgatherv (payloads); with {TrainFlags.NoOverlap}, the whole buffer after backward.",
            o => o.Compress, (o, v) => o with { Compress = v })
            .Validators.Add(result =>
            {
                // A usage error at parsing (exit 2), like an unknown --exchange, not a failed run; so is --compress with an
                // algorithm that averages models (local SGD, RI-SGD), which the run would refuse anyway.
                var spec = result.GetValueOrDefault<string>() ?? CompressorRegistry.None;
                try
                {
                    CompressorRegistry.Validate(spec);
                }
                catch (InputException e)
                {
                    result.AddError(e.Message);
                    return;
                }

                var algorithmResult = (result.Parent as CommandResult)?.Children.OfType<OptionResult>()
                    .FirstOrDefault(o => o.Option.Name == TrainFlags.Algorithm);
                string algorithm;
                try
                {
                    algorithm = algorithmResult?.GetValueOrDefault<string>() ?? new TrainOptions().Algorithm;
                }
                catch (InvalidOperationException)
                {
                    // --algo itself is wrong (an unknown name, no value): the parser reports that, naming it; reading
                    // the value throws instead (found by InputFuzzTests).
                    return;
                }

                var owners = AlgorithmRegistry.OwnersOf(TrainFlags.Compress).ToList();
                if (!CompressorRegistry.IsNone(spec) && !owners.Contains(algorithm))
                {
                    result.AddError($"{TrainFlags.Compress} applies to --algo {string.Join(", ", owners)} only (got --algo {algorithm}): " +
                        "local SGD and RI-SGD average models, which stay exact");
                }
            });
        t.Add(TrainFlags.Delay, $"{Owners(TrainFlags.Delay)}: staleness injected by the master on top of the real one: {Async.DelaySchedule.Help}; default none.",
            o => o.Delay, (o, v) => o with { Delay = v });
        t.Add(TrainFlags.StepSchedule, $"{Owners(TrainFlags.StepSchedule)}: alpha_n with alpha_0 = --lr: {Async.StepSchedule.Help}.",
            o => o.StepSchedule, (o, v) => o with { StepSchedule = v });
        t.Choice(TrainFlags.Arrival, $"{Owners(TrainFlags.Arrival)}: any (the master applies whichever gradient arrives first; default) | fixed (the workers in turn: deterministic).",
            [("any", false), ("fixed", true)], o => o.FixedArrival, (o, v) => o with { FixedArrival = v });
        t.Add(TrainFlags.DelayHistogram, $"{Owners(TrainFlags.DelayHistogram)}: write the histogram of the measured delays d_n as JSON to this file and as SVG beside it (.svg).",
            o => o.DelayHistogramPath, (o, v) => o with { DelayHistogramPath = v });
        t.Add(TrainFlags.SlowWorkers, $"{Owners(TrainFlags.SlowWorkers)}: K:FACTOR[,K:FACTOR]: worker (rank) K computes FACTOR times slower (it sleeps FACTOR - 1 times its compute).",
            o => o.SlowWorkers, (o, v) => o with { SlowWorkers = v });
        t.Choice(TrainFlags.OnNonFinite, "What a step with a non-finite loss or gradient norm does: stop (the run, on every rank: exit status 4, results marked diverged) " +
            $"| skip-step (its update dropped on every rank and counted; after {TrainFlags.MaxSkippedSteps} such steps the next one stops the run).",
            [("stop", NonFinitePolicy.Stop), ("skip-step", NonFinitePolicy.SkipStep)], o => o.OnNonFinite, (o, v) => o with { OnNonFinite = v });
        t.Add(TrainFlags.MaxSkippedSteps, $"With {TrainFlags.OnNonFinite} skip-step: steps skipped at most (default {new TrainOptions().MaxSkippedSteps}).",
            o => o.SkippedStepsLimit, (o, v) => o with { SkippedStepsLimit = v });
        t.Add(TrainFlags.Checkpoint, "Write checkpoints (model, optimizer state, step, options; see README) to this folder (rank 0), atomically.",
            o => o.CheckpointDirectory, (o, v) => o with { CheckpointDirectory = v });
        t.Add(TrainFlags.CheckpointEvery, $"With {TrainFlags.Checkpoint}: a checkpoint every N steps or every epoch ({CheckpointInterval.Usage}; default epoch).",
            o => o.CheckpointEvery, (o, v) => o with { CheckpointEvery = v });
        t.Add(TrainFlags.CheckpointKeep, $"With {TrainFlags.Checkpoint}: keep the newest K checkpoints (default {new TrainOptions().EffectiveCheckpointKeep}).",
            o => o.CheckpointKeep, (o, v) => o with { CheckpointKeep = v });
        t.Add(TrainFlags.Resume, "Continue from this checkpoint file, or from the newest checkpoint in this folder (same options; data-parallel: any rank count with the same global batch; pipeline: any S x D).",
            o => o.ResumePath, (o, v) => o with { ResumePath = v });
        t.Add(TrainFlags.Output, "Write the results as JSON to this file (rank 0).", o => o.OutputPath, (o, v) => o with { OutputPath = v });
        t.Add(TrainFlags.SaveParameters, "Write the final flat parameters (float32) to this file (rank 0).", o => o.ParametersPath, (o, v) => o with { ParametersPath = v });
        t.Add(TrainFlags.SaveFirstGradients, "Write the averaged flat gradient (float32) of the first mini-batch, at the initial parameters, to this file " +
            $"(rank 0; {Psgd.Single.Name}, {Psgd.Registration.Name}, {PipelineEngine.Registration.Name}).",
            o => o.FirstGradientsPath, (o, v) => o with { FirstGradientsPath = v });
        return t;
    }

    /// <summary>
    /// What <c>compare</c> takes: not the algorithm and the options algorithms own (it sets them per run), nor the
    /// output files of one run (it writes its own).
    /// </summary>
    public static OptionTable<TrainOptions> Common() =>
        Create().Without([
            TrainFlags.Algorithm, .. AlgorithmRegistry.All.SelectMany(a => a.Options).Select(o => o.Flag),
            TrainFlags.Output, TrainFlags.SaveParameters, TrainFlags.SaveFirstGradients,
            TrainFlags.Checkpoint, TrainFlags.CheckpointEvery, TrainFlags.CheckpointKeep, TrainFlags.Resume,
        ]);

    /// <summary>The algorithms owning a flag, for its help ("local-sgd, ri-sgd").</summary>
    private static string Owners(string flag) => string.Join(", ", AlgorithmRegistry.OwnersOf(flag));
}
