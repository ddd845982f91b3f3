using System.Text.Json;
using System.Text.Json.Serialization;

namespace MpiPipeline.Layerwise;

/// <summary>
/// A layer-wise plan: one <see cref="LayerConfig"/> per element of the model's layer list (the
/// <c>ModelZoo.Build</c> list, a residual block being one element), for <see cref="Ranks"/> ranks. The search
/// (<c>mpipipe plan</c>) writes it and the layer-wise engine (<c>train --algo layerwise --plan FILE</c>) runs it.
/// File form (JSON): <c>{"model": "cnn", "ranks": 4, "layers": ["n4c1h1", ...], "predictedStepSeconds": 0.012}</c>;
/// the predicted time is optional and informative only.
/// </summary>
internal sealed record LayerwisePlan(string Model, int Ranks, IReadOnlyList<LayerConfig> Layers, double? PredictedStepSeconds = null)
{
    private static readonly JsonSerializerOptions Indented = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Every layer data parallel: the plan PSGD runs.</summary>
    public static LayerwisePlan DataParallel(string model, int ranks, int layerCount) =>
        new(model, ranks, Enumerable.Repeat(LayerConfig.DataParallel(ranks), layerCount).ToArray());

    public string ToJson() =>
        JsonSerializer.Serialize(new PlanFile(Model, Ranks, Layers.Select(layer => layer.ToString()).ToArray(), PredictedStepSeconds), Indented);

    /// <summary>Reads a plan file's text; <paramref name="source"/> names it in the messages.</summary>
    public static LayerwisePlan FromJson(string json, string source)
    {
        PlanFile? file;
        try
        {
            file = JsonSerializer.Deserialize<PlanFile>(json, Indented);
        }
        catch (JsonException error)
        {
            throw new InputException($"{source}: not a layer-wise plan (JSON): {error.Message}");
        }

        if (file is null || string.IsNullOrWhiteSpace(file.Model) || file.Layers is null || file.Layers.Length == 0)
        {
            throw new InputException($"{source}: a layer-wise plan needs \"model\", \"ranks\" and a non-empty \"layers\" list");
        }

        if (file.Ranks < 1)
        {
            throw new InputException($"{source}: \"ranks\" is {file.Ranks}; it must be at least 1");
        }

        var layers = new LayerConfig[file.Layers.Length];
        for (var i = 0; i < layers.Length; i++)
        {
            try
            {
                layers[i] = LayerConfig.Parse(file.Layers[i]);
            }
            catch (InputException error)
            {
                throw new InputException($"{source}: layer {i}: {error.Message}");
            }

            if (layers[i].Ranks != file.Ranks)
            {
                throw new InputException(
                    $"{source}: layer {i} is {layers[i]}, which uses {layers[i].Ranks} ranks; every layer of a {file.Ranks}-rank plan uses {file.Ranks}");
            }
        }

        return new LayerwisePlan(file.Model, file.Ranks, layers, file.PredictedStepSeconds);
    }

    private sealed record PlanFile(
        [property: JsonPropertyName("model")] string Model,
        [property: JsonPropertyName("ranks")] int Ranks,
        [property: JsonPropertyName("layers")] string[] Layers,
        [property: JsonPropertyName("predictedStepSeconds")] double? PredictedStepSeconds);
}
