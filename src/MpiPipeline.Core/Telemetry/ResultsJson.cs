using System.Text.Json;
using System.Text.Json.Serialization;

namespace MpiPipeline.Telemetry;

/// <summary>
/// A run's <see cref="RunResult"/> as JSON (camelCase, indented). NaN and infinities are written as the strings
/// "NaN", "Infinity", "-Infinity" (a diverged loss is a result too). Files are written atomically.
/// </summary>
internal static class ResultsJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,

        // Messages (a divergence's) read as written: no \u0022 for quotes or \u002B for '+'. The files are data, not HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    public static string Serialize(RunResult result) => JsonSerializer.Serialize(result, Options);

    /// <summary>Parses a results document; <paramref name="source"/> names it in errors.</summary>
    public static RunResult Deserialize(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<RunResult>(json, Options)
                ?? throw new InputException($"{source}: not a results file (the document is null).");
        }
        catch (JsonException ex)
        {
            throw new InputException($"{source}: not a valid results file: {ex.Message}");
        }
    }

    /// <summary>Writes <paramref name="result"/> to <paramref name="path"/> atomically (path.tmp, then rename).</summary>
    public static void Write(string path, RunResult result) => AtomicFile.WriteAllText(path, Serialize(result) + "\n");

    public static RunResult Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"results file {path} not found.");
        }

        return Deserialize(File.ReadAllText(path), path);
    }
}
