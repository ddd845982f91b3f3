using System.CommandLine;
using System.Text.Json;
using MpiPipeline.Dicod;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe dicod report</c>: no MPI; reads every *.json of a folder of <c>mpipipe dicod --output</c> results (one
/// problem) and writes the markdown and the two plots (PREFIX-convergence.svg, PREFIX-speedup.svg).
/// </summary>
internal static class DicodReportCommand
{
    internal static Command Create()
    {
        var runs = new Option<string>("--runs") { Description = "Folder of the runs' JSON results.", Required = true };
        var markdown = new Option<string>("--markdown") { Description = "The markdown file to write.", Required = true };
        var plots = new Option<string>("--plots") { Description = "Path prefix of the SVG plots.", Required = true };
        var command = new Option<string>("--command") { Description = "The command that made the runs, quoted in the markdown.", DefaultValueFactory = _ => "make bench-dicod" };
        var report = new Command("report", "bench/results/dicod.md and its plots from a folder of mpipipe dicod --output results.");
        foreach (var option in new Option[] { runs, markdown, plots, command })
        {
            report.Options.Add(option);
        }

        report.SetAction(parse =>
        {
            var folder = parse.GetValue(runs)!;
            var files = Directory.Exists(folder) ? Directory.GetFiles(folder, "*.json").Order().ToList() : [];
            if (files.Count == 0)
            {
                Console.Error.WriteLine($"mpipipe dicod report: no *.json results in {folder}");
                return 1;
            }

            var results = files.Select(f => JsonSerializer.Deserialize<DicodResult>(File.ReadAllText(f), ResultsJson.Options)
                ?? throw new InputException($"{f}: empty results")).ToList();
            var prefix = parse.GetValue(plots)!;
            AtomicFile.WriteAllText(parse.GetValue(markdown)!, DicodReport.Markdown(results, parse.GetValue(command)!, Environment.ProcessorCount, prefix));
            DicodReport.ConvergencePlot(results).Write(prefix + "-convergence.svg");
            DicodReport.SpeedupPlot(results).Write(prefix + "-speedup.svg");
            return 0;
        });
        return report;
    }
}
