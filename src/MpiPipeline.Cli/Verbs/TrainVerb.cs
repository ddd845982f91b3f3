using System.CommandLine;
using MpiPipeline.Algorithms;
using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary><c>mpipipe train</c>: one training run on every rank of the job (single, psgd, local-sgd, ri-sgd, pipeline).</summary>
internal static class TrainVerb
{
    internal static Command Create()
    {
        var set = new TrainOptionSet(includeAlgorithm: true);
        var output = new Option<string?>("--output") { Description = "Write the results as JSON to this file (rank 0)." };
        var saveParameters = new Option<string?>("--save-parameters") { Description = "Write the final flat parameters (float32) to this file (rank 0)." };
        var saveFirstGradients = new Option<string?>("--save-first-gradients") { Description = "Write the averaged flat gradient (float32) of the first mini-batch, at the initial parameters, to this file (rank 0; single, psgd, pipeline)." };
        var command = new Command("train", "Train a model on Fashion-MNIST: one rank (single), data-parallel (psgd, local-sgd, ri-sgd) or pipelined (pipeline, with --stages/--data-parallel/--micro-batches/--schedule).");
        set.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(saveParameters);
        command.Options.Add(saveFirstGradients);
        command.SetAction(parse =>
        {
            var options = set.Read(parse) with
            {
                OutputPath = parse.GetValue(output),
                ParametersPath = parse.GetValue(saveParameters),
                FirstGradientsPath = parse.GetValue(saveFirstGradients),
            };
            return MpiRuntime.Run(world =>
            {
                var result = AlgorithmRegistry.Train(world, options, new ConsoleTrainingReporter());
                if (result is null)
                {
                    RankConsole.AnyRank($"worker {world.Rank} left the run (emulated failure at step {options.FailStep})");
                }

                return 0;
            });
        });
        return command;
    }
}
