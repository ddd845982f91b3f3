using System.CommandLine;
using System.Globalization;
using MpiPipeline.Data;
using MpiPipeline.Layerwise;
using MpiPipeline.Scaling;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;
using MpiPipeline.Torch;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe plan</c>: the layer-wise search (OptCNN) for a model on R ranks, a plain process (no MPI): the chosen
/// configuration per layer, the predicted step time and its parts, the same for pure data and pure model parallelism,
/// and with <c>--output</c> the plan file that <c>train --algo layerwise --plan FILE</c> runs.
/// </summary>
internal static class PlanVerb
{
    internal static Command Create() => PlainVerb.Create("plan",
        "Layer-wise parallelism (OptCNN): search a configuration per layer (sample, channel, height splits) with a cost model (measured layer times, alpha-beta transfers and syncs); print it and the pure data and model parallel predictions.",
        Options(), o => o.Problems(), options => Run(options, Console.Out));

    /// <summary>The options of <see cref="PlanOptions"/>, with its defaults.</summary>
    internal static OptionTable<PlanOptions> Options()
    {
        var t = new OptionTable<PlanOptions>();
        t.Add(TrainFlags.Model, $"The model (built for Fashion-MNIST's 1x28x28 samples, 10 classes): {string.Join(" | ", ModelZoo.Names)}.",
            o => o.Model, (o, v) => { ModelZoo.CheckName(v); return o with { Model = v }; });
        t.Add("--ranks", "R, the ranks every layer is split over (the product of its sample, channel and height degrees).", o => o.Ranks, (o, v) => o with { Ranks = v });
        t.Add(TrainFlags.Batch, "The global mini-batch (split by each layer's sample degree).", o => o.Batch, (o, v) => o with { Batch = v });
        t.Add("--network", "Price communication on an emulated network RATE[,DELAY] (the scaling sweep's: 1gbit, 10gbit,50us; one link all ranks share) instead of this machine's shared memory.",
            o => o.Network?.ToString(), (o, v) => o with { Network = v is null ? null : EmulatedNetwork.Parse(v) });
        t.Add(TrainFlags.Threads, "libtorch threads the layer times are measured with.", o => o.Threads, (o, v) => o with { Threads = v });
        t.Add("--compute-cache", $"The layer-time cache file (default {MeasuredLayerTimes.DefaultPath}): each layer shard is measured once per machine, threads, bridge ABI and libtorch.",
            o => o.ComputeCache, (o, v) => o with { ComputeCache = v });
        t.Add("--explain", "Also print every configuration of every layer with its compute and sync, and each chosen transition's collectives and bytes.", o => o.Explain, (o, v) => o with { Explain = v });
        t.Choice("--write", "Which plan --output writes: searched | data-parallel | model-parallel.",
            [("searched", PlanStrategy.Searched), ("data-parallel", PlanStrategy.DataParallel), ("model-parallel", PlanStrategy.ModelParallel)],
            o => o.Write, (o, v) => o with { Write = v });
        t.Add("--output", "Write the searched plan (or the --write one) as a layer-wise plan JSON file (for train --algo layerwise --plan FILE).", o => o.Output, (o, v) => o with { Output = v });
        return t;
    }

    internal static int Run(PlanOptions options, TextWriter output)
    {
        if (options.Output is not null)
        {
            AtomicFile.CheckWritable(options.Output, "--output");
        }

        var geometry = new SampleGeometry(FashionMnist.SampleShape, FashionMnist.Classes);
        var layers = LayerNode.Of(options.Model, geometry);
        var network = options.Network is { } emulated ? LayerwiseNetwork.Emulated(emulated) : LayerwiseNetwork.SharedMemory;
        TorchRuntime.Threads = options.Threads;
        var concurrent = MeasuredLayerTimes.Concurrent(options.Ranks, options.Threads);
        var times = new MeasuredLayerTimes(options.ComputeCache ?? MeasuredLayerTimes.DefaultPath, MeasuredLayerTimes.Environment(options.Threads, concurrent), concurrent: concurrent);
        var model = new LayerwiseCostModel(layers, options.Batch, options.Ranks, times, network);
        var searched = model.Evaluate(model.Search());
        var data = model.Evaluate(model.DataParallel());
        var parallel = model.Evaluate(model.ModelParallel());
        times.Save();

        Write(output, options, model, searched, data, parallel, times.Measured);
        if (options.Output is not null)
        {
            var chosen = options.Write switch
            {
                PlanStrategy.DataParallel => data,
                PlanStrategy.ModelParallel => parallel,
                _ => searched,
            };
            var plan = new LayerwisePlan(options.Model, options.Ranks, chosen.Configs, chosen.Step);
            AtomicFile.WriteAllText(options.Output, plan.ToJson() + "\n");
            output.WriteLine($"wrote {options.Output}");
        }

        return 0;
    }

    internal static void Write(TextWriter output, PlanOptions options, LayerwiseCostModel model, PlanCost searched, PlanCost data, PlanCost parallel, int measured)
    {
        output.WriteLine($"plan: {options.Model} on {options.Ranks} ranks, global batch {options.Batch}, {options.Threads} libtorch thread(s) per rank");
        output.WriteLine($"network: {model.Network.Describe()}");
        output.WriteLine($"layer times: {(measured == 0 ? "all from the cache" : $"{measured} shard(s) and transfer(s) measured now")} ({options.ComputeCache ?? MeasuredLayerTimes.DefaultPath})");
        var table = new MarkdownTable("layer", "kind", "config", "compute ms", "transfer in ms", "collective (forward / backward)", "sync ms");
        foreach (var (layer, i) in searched.Layers.Select((l, i) => (l, i)))
        {
            table.AddRow(I(i), layer.Layer.Spec.ToString(), layer.Config.ToString(), Ms(layer.Compute), Ms(layer.TransferSeconds),
                layer.In == Transfer.None ? "-" : $"{layer.In.Forward} / {layer.In.Backward}", Ms(layer.Sync));
        }

        if (searched.ToLoss != Transfer.None)
        {
            table.AddRow("loss", "class scores", "", "", Ms(searched.ToLossSeconds), $"{searched.ToLoss.Forward} / {searched.ToLoss.Backward}", "");
        }

        output.Write(table.ToString());
        output.WriteLine();
        var summary = new MarkdownTable("plan", "predicted step ms", "compute ms", "transfer ms", "sync ms", "vs searched");
        foreach (var (name, cost) in new[] { ("searched", searched), ("data parallel", data), ("model parallel", parallel) })
        {
            summary.AddRow(name, Ms(cost.Step), Ms(cost.Compute), Ms(cost.Transfer), Ms(cost.Sync), F(cost.Step / searched.Step, 2) + "x");
        }

        output.Write(summary.ToString());
        output.WriteLine($"model parallel: {string.Join(" ", parallel.Configs)} (layers whose kind or channel count does not take c = {options.Ranks} stay data parallel)");
        if (!options.Explain)
        {
            return;
        }

        output.WriteLine();
        output.WriteLine("what each kind may split beyond the samples:");
        foreach (var kind in model.Layers.Select(l => l.Kind).Distinct())
        {
            output.WriteLine($"  {kind.Name}: {kind.Why}");
        }

        output.WriteLine();
        output.WriteLine("every configuration (compute + sync per layer; transitions priced forward and backward):");
        var all = new MarkdownTable("layer", "kind", "config", "shard", "compute ms", "sync ms", "chosen");
        for (var i = 0; i < model.Layers.Count; i++)
        {
            foreach (var config in model.Configs[i])
            {
                var shard = ComputeShard.Of(model.Layers[i], config, model.Batch);
                all.AddRow(I(i), model.Layers[i].Spec.ToString(), config.ToString(), $"{shard.Layer} on {shard.Batch}x{SampleGeometry.Format(shard.InputShape)}",
                    Ms(model.Compute(i, config)), Ms(model.Sync(i, config)), config == searched.Configs[i] ? "yes" : "");
            }
        }

        output.Write(all.ToString());
        output.WriteLine();
        foreach (var (layer, i) in searched.Layers.Select((l, i) => (l, i)).Where(x => x.l.In != Transfer.None))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"into layer {i} ({searched.Configs[i - 1]} -> {layer.Config}): {layer.In.Forward}, busiest rank {layer.In.MaxRankBytes:N0} B with {layer.In.MaxPeers} peer(s), {layer.In.TotalBytes:N0} B in all; backward {layer.In.Backward}, the same bytes"));
        }
    }

    private static string Ms(double seconds) => (seconds * 1e3).ToString("F3", CultureInfo.InvariantCulture);

    private static string F(double value, int digits) => value.ToString("F" + digits, CultureInfo.InvariantCulture);

    private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
}
