using System.CommandLine;
using MpiPipeline.Algorithms;
using MpiPipeline.Exchange;
using MpiPipeline.Pipeline;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary>The training options shared by <c>train</c> and <c>compare</c>; parsed into one <see cref="TrainOptions"/>.</summary>
internal sealed class TrainOptionSet
{
    private readonly Option<string> algorithm = new("--algo") { Description = string.Join(" | ", AlgorithmRegistry.Names), DefaultValueFactory = _ => new TrainOptions().Algorithm };
    private readonly Option<string> model = new("--model") { Description = "mlp | cnn | deep-mlp:N[:W] | res-mlp:N[:W]", DefaultValueFactory = _ => "cnn" };
    private readonly Option<int> epochs = new("--epochs") { Description = "Passes over the training set.", DefaultValueFactory = _ => 2 };
    private readonly Option<int> batch = new("--batch") { Description = "Global mini-batch, summed over workers (each takes batch / workers).", DefaultValueFactory = _ => 128 };
    private readonly Option<double> learningRate = new("--lr") { Description = "Learning rate eta.", DefaultValueFactory = _ => 0.05 };
    private readonly Option<string> optimizer = new("--optimizer") { Description = "sgd | adam", DefaultValueFactory = _ => "sgd" };
    private readonly Option<double> momentum = new("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => 0.9 };
    private readonly Option<bool> nesterov = new("--nesterov") { Description = "Nesterov momentum (SGD)." };
    private readonly Option<double> weightDecay = new("--weight-decay") { Description = "L2 weight decay." };
    private readonly Option<int> tau = new("--tau") { Description = "tau: local steps between model averagings (local-sgd, ri-sgd).", DefaultValueFactory = _ => 1 };
    private readonly Option<int> redundancy = new("--redundancy") { Description = "q: data chunks each worker holds (ri-sgd), 1..workers.", DefaultValueFactory = _ => 1 };
    private readonly Option<string?> split = new("--split") { Description = "shuffle (i.i.d. slices of one permutation) | chunks (worker j holds chunk j); default: chunks for ri-sgd, shuffle otherwise." };
    private readonly Option<int?> failRank = new("--fail-rank") { Description = "ri-sgd: this worker fails (emulated fail-stop) ..." };
    private readonly Option<long?> failStep = new("--fail-step") { Description = "... at this step." };
    private readonly Option<long> seed = new("--seed") { Description = "Seed of initialization, shuffling and dropout (with rank and step).", DefaultValueFactory = _ => 1 };
    private readonly Option<int?> threads = new("--threads") { Description = "libtorch threads per rank (default: cores on the node / ranks on the node)." };
    private readonly Option<string> device = new("--device") { Description = "cpu | cuda (one GPU per rank: cuda:<node-local rank mod GPUs>) | cuda:N | auto (cuda where usable, else cpu)", DefaultValueFactory = _ => "cpu" };
    private readonly Option<string?> data = new("--data") { Description = "Directory of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)." };
    private readonly Option<int?> trainSamples = new("--train-samples") { Description = "Use only the first N training samples." };
    private readonly Option<int?> testSamples = new("--test-samples") { Description = "Use only the first N test samples." };
    private readonly Option<long?> maxSteps = new("--max-steps") { Description = "Stop after this many steps in total." };
    private readonly Option<int?> stages = new("--stages", "--pipeline") { Description = "pipeline: S, stages (default: world size / D)." };
    private readonly Option<int?> replicas = new("--data-parallel", "--replicas") { Description = "pipeline: D, data-parallel replicas of each stage; S * D = world size (default: world size / S)." };
    private readonly Option<int?> microBatches = new("--micro-batches") { Description = $"pipeline: M, micro-batches per mini-batch (each replica's batch / M samples each; default {TrainOptions.DefaultMicroBatches})." };
    private readonly Option<string?> schedule = new("--schedule") { Description = "pipeline: gpipe | 1f1b (default 1f1b)." };
    private readonly Option<string?> balance = new("--balance") { Description = "pipeline: layers per stage, e.g. 3,2,2 (default: automatic partition)." };
    private readonly Option<string?> partition = new("--partition") { Description = "pipeline: automatic partition by measured layer 'time' (default) or by 'parameters'." };
    private readonly Option<string?> trace = new("--trace") { Description = "pipeline: write a Chrome trace (chrome://tracing, Perfetto) of every rank to this file." };
    private readonly Option<string> exchange = new("--exchange") { Description = "How replicas average: " + string.Join(" | ", ExchangeRegistry.All.Select(e => $"{e.Name} ({e.Help})")), DefaultValueFactory = _ => ExchangeRegistry.Default };
    private readonly Option<int> curveEvery = new("--curve-every") { Description = "Steps between two points of the loss curve.", DefaultValueFactory = _ => 10 };

    public TrainOptionSet(bool includeAlgorithm)
    {
        algorithm.AcceptOnlyFromAmong([.. AlgorithmRegistry.Names]);
        optimizer.AcceptOnlyFromAmong("sgd", "adam");
        split.AcceptOnlyFromAmong("shuffle", "chunks");
        schedule.AcceptOnlyFromAmong("gpipe", "1f1b");
        partition.AcceptOnlyFromAmong("time", "parameters");
        exchange.AcceptOnlyFromAmong([.. ExchangeRegistry.All.Select(e => e.Name)]);
        IncludeAlgorithm = includeAlgorithm;
    }

    private bool IncludeAlgorithm { get; }

    public void AddTo(Command command)
    {
        if (IncludeAlgorithm)
        {
            command.Options.Add(algorithm);
        }

        foreach (var option in new Option[]
                 {
                     model, epochs, batch, learningRate, optimizer, momentum, nesterov, weightDecay, tau, redundancy, split,
                     failRank, failStep, seed, threads, device, exchange, data, trainSamples, testSamples, maxSteps, curveEvery,
                     stages, replicas, microBatches, schedule, balance, partition, trace,
                 })
        {
            if (!IncludeAlgorithm && (option == tau || option == redundancy || option == split || option == failRank || option == failStep
                                      || option == stages || option == replicas || option == microBatches || option == schedule
                                      || option == balance || option == partition || option == trace))
            {
                continue;
            }

            command.Options.Add(option);
        }
    }

    public TrainOptions Read(ParseResult parse) => new()
    {
        Algorithm = IncludeAlgorithm ? parse.GetValue(algorithm)! : new TrainOptions().Algorithm,
        Model = parse.GetValue(model)!,
        Epochs = parse.GetValue(epochs),
        Batch = parse.GetValue(batch),
        LearningRate = parse.GetValue(learningRate),
        Optimizer = parse.GetValue(optimizer) == "adam" ? OptimizerKind.Adam : OptimizerKind.Sgd,
        Momentum = parse.GetValue(momentum),
        Nesterov = parse.GetValue(nesterov),
        WeightDecay = parse.GetValue(weightDecay),
        Tau = IncludeAlgorithm ? parse.GetValue(tau) : 1,
        Redundancy = IncludeAlgorithm ? parse.GetValue(redundancy) : 1,
        Split = parse.GetValue(split) switch
        {
            "shuffle" => DataSplit.Shuffle,
            "chunks" => DataSplit.Chunks,
            _ => null,
        },
        FailRank = IncludeAlgorithm ? parse.GetValue(failRank) : null,
        FailStep = IncludeAlgorithm ? parse.GetValue(failStep) : null,
        Seed = parse.GetValue(seed),
        Threads = parse.GetValue(threads),
        Device = parse.GetValue(device)!,
        DataDirectory = parse.GetValue(data),
        Exchange = parse.GetValue(exchange)!,
        TrainSamples = parse.GetValue(trainSamples),
        TestSamples = parse.GetValue(testSamples),
        MaxSteps = parse.GetValue(maxSteps),
        CurveEvery = parse.GetValue(curveEvery),
        Stages = IncludeAlgorithm ? parse.GetValue(stages) : null,
        Replicas = IncludeAlgorithm ? parse.GetValue(replicas) : null,
        MicroBatches = IncludeAlgorithm ? parse.GetValue(microBatches) : null,
        Schedule = IncludeAlgorithm && parse.GetValue(schedule) is { } kind ? Pipeline.Schedule.ParseKind(kind) : null,
        Balance = IncludeAlgorithm ? parse.GetValue(balance) : null,
        PartitionBy = IncludeAlgorithm ? parse.GetValue(partition) switch
        {
            "time" => PartitionCost.Time,
            "parameters" => PartitionCost.Parameters,
            _ => null,
        } : null,
        TracePath = IncludeAlgorithm ? parse.GetValue(trace) : null,
    };
}
