using System.CommandLine;
using MpiPipeline.Algorithms;
using MpiPipeline.DataParallel;
using MpiPipeline.Engines;
using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary><c>mpipipe train</c>: one training run on every rank of the job, with any algorithm of <see cref="AlgorithmRegistry"/>.</summary>
internal static class TrainVerb
{
    internal static Command Create()
    {
        var table = TrainOptionTable.Create();
        var command = new Command(TrainFlags.Verb,
            $"Train a model on Fashion-MNIST: one rank ({Psgd.Single.Name}), data-parallel ({string.Join(", ", AlgorithmRegistry.DataParallelNames)}) or pipelined " +
            $"({PipelineEngine.Registration.Name}, with {TrainFlags.Stages}/{TrainFlags.Replicas}/{TrainFlags.MicroBatches}/{TrainFlags.Schedule}).");
        table.AddTo(command);
        command.SetAction(parse =>
        {
            var options = table.Read(parse);
            return MpiRuntime.Run(world =>
            {
                var result = AlgorithmRegistry.Train(world, options, new ConsoleTrainingReporter());
                if (result is null)
                {
                    RankConsole.AnyRank($"worker {world.Rank} left the run (emulated failure at step {options.FailStep})");
                }

                // Every rank holds the same agreed divergence, so every rank exits with its status.
                return result?.IsDiverged == true ? Divergence.ExitCode : 0;
            });
        });
        return command;
    }
}
