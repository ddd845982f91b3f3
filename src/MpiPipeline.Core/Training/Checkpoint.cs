using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace MpiPipeline.Training;

/// <summary>One layer of the model a checkpoint was made from: its spec as text and its parameter count.</summary>
internal sealed record CheckpointLayer(string Spec, long Parameters);

/// <summary>
/// What a checkpoint says about itself: the step it was taken after (the next step to run), the job it came from
/// (algorithm, world size, pipeline grid), the model's fingerprint (its name, data set and layers with their
/// parameter counts), the optimizer's state shape, whether it holds one state per worker, the steps the divergence
/// guard skipped, and the run's options as the results name them.
/// </summary>
internal sealed record CheckpointHeader(
    long Step,
    string Algorithm,
    int Workers,
    int Stages,
    int Replicas,
    string Model,
    string DataSet,
    IReadOnlyList<CheckpointLayer> Layers,
    string Optimizer,
    int OptimizerTensors,
    long OptimizerStepCount,
    bool PerWorker,
    IReadOnlyList<long> SkippedSteps,
    IReadOnlyDictionary<string, string> Options)
{
    public long ParameterCount => Layers.Sum(l => l.Parameters);
}

/// <summary>
/// The checkpoint file (<c>--checkpoint</c>, <c>--resume</c>), little-endian:
/// <code>
/// offset  size  content
/// 0       8     magic "MPPCKPT\n"
/// 8       4     format version (uint32, <see cref="FormatVersion"/>)
/// 12      8     payload length L (uint64)
/// 20      L     payload: header length H (uint32), H bytes of UTF-8 JSON (<see cref="CheckpointHeader"/>), tensor count
///               (uint32), then per tensor: name length (uint16), UTF-8 name, element count (uint64), float32 values
/// 20 + L  32    SHA-256 of bytes [0, 20 + L)
/// </code>
/// Model-level tensors are stored per layer (<c>parameters/layer 3</c>, <c>optimizer 0/layer 3</c>), so a pipeline
/// of any S x D grid takes the layers of its stage; per-worker state is stored flat per world rank
/// (<c>worker 1/parameters</c>, <c>worker 1/optimizer</c>, <c>worker 1/residual</c>). A file cut short, with a
/// changed byte, or of another format is an <see cref="InputException"/> naming it.
/// </summary>
internal sealed class Checkpoint
{
    public const int FormatVersion = 1;
    public const string Extension = ".ckpt";
    private const int PrefixLength = 20;
    private const int HashLength = 32;
    private static readonly byte[] Magic = "MPPCKPT\n"u8.ToArray();

    private readonly List<(string Name, float[] Values)> tensors = [];

    public Checkpoint(CheckpointHeader header)
    {
        Header = header;
    }

    public CheckpointHeader Header { get; }

    public IReadOnlyList<string> TensorNames => [.. tensors.Select(t => t.Name)];

    public void Add(string name, float[] values)
    {
        if (tensors.Any(t => t.Name == name))
        {
            throw new InvalidOperationException($"internal: the checkpoint already holds a tensor '{name}'");
        }

        tensors.Add((name, values));
    }

    public bool Has(string name) => tensors.Any(t => t.Name == name);

    /// <summary>The tensor of that name; a checkpoint that lacks it is corrupt (the header promised it).</summary>
    public float[] Get(string name) =>
        tensors.FirstOrDefault(t => t.Name == name).Values ?? throw new InputException($"the checkpoint has no tensor '{name}' (it is corrupt or incomplete)");

    /// <summary>Model-level tensor <paramref name="prefix"/> stored per layer (<paramref name="flat"/> is the whole model's).</summary>
    public void AddPerLayer(string prefix, ReadOnlySpan<float> flat)
    {
        var offset = 0;
        for (var l = 0; l < Header.Layers.Count; l++)
        {
            var length = checked((int)Header.Layers[l].Parameters);
            Add(LayerName(prefix, l), flat.Slice(offset, length).ToArray());
            offset += length;
        }

        if (offset != flat.Length)
        {
            throw new InvalidOperationException($"internal: {flat.Length} values for a model of {offset} parameters");
        }
    }

    /// <summary>Layers [start, start + count) of <paramref name="prefix"/>, back to back (a pipeline stage's flat buffer).</summary>
    public float[] GetLayers(string prefix, int start, int count)
    {
        var parts = Enumerable.Range(start, count).Select(l => Get(LayerName(prefix, l))).ToList();
        var flat = new float[parts.Sum(p => p.Length)];
        var offset = 0;
        foreach (var part in parts)
        {
            part.CopyTo(flat, offset);
            offset += part.Length;
        }

        return flat;
    }

    public static string LayerName(string prefix, int layer) => $"{prefix}/layer {layer}";

    public byte[] Serialize()
    {
        using var payload = new MemoryStream();
        var header = HeaderJson(Header);
        WriteUInt32(payload, (uint)header.Length);
        payload.Write(header);
        WriteUInt32(payload, (uint)tensors.Count);
        Span<byte> scratch = stackalloc byte[8];
        foreach (var (name, values) in tensors)
        {
            var nameBytes = Encoding.UTF8.GetBytes(name);
            BinaryPrimitives.WriteUInt16LittleEndian(scratch, checked((ushort)nameBytes.Length));
            payload.Write(scratch[..2]);
            payload.Write(nameBytes);
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, (ulong)values.Length);
            payload.Write(scratch);
            if (BitConverter.IsLittleEndian)
            {
                payload.Write(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            else
            {
                foreach (var v in values)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(scratch, v);
                    payload.Write(scratch[..4]);
                }
            }
        }

        var body = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        var file = new byte[PrefixLength + body.Length + HashLength];
        Magic.CopyTo(file, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(12), (ulong)body.Length);
        body.CopyTo(file.AsSpan(PrefixLength));
        SHA256.HashData(file.AsSpan(0, PrefixLength + body.Length), file.AsSpan(PrefixLength + body.Length));
        return file;
    }

    /// <summary>Reads a checkpoint from its bytes; <paramref name="source"/> names it in the errors.</summary>
    public static Checkpoint Parse(ReadOnlySpan<byte> file, string source)
    {
        if (file.Length < Magic.Length || !file[..Magic.Length].SequenceEqual(Magic))
        {
            throw new InputException($"{source} is not an MpiPipeline checkpoint (it does not start with the checkpoint magic)");
        }

        if (file.Length < PrefixLength)
        {
            throw new InputException($"{source} is truncated: {file.Length} bytes, shorter than the checkpoint's fixed header");
        }

        var version = BinaryPrimitives.ReadUInt32LittleEndian(file[8..]);
        if (version != FormatVersion)
        {
            throw new InputException($"{source} is checkpoint format version {version}; this build reads version {FormatVersion}");
        }

        var length = BinaryPrimitives.ReadUInt64LittleEndian(file[12..]);
        var expected = (ulong)PrefixLength + length + HashLength;
        if (length > int.MaxValue || (ulong)file.Length != expected)
        {
            throw new InputException((ulong)file.Length < expected
                ? $"{source} is truncated: {file.Length} bytes, its header says {expected} (a save that did not finish?)"
                : $"{source} is corrupt: {file.Length} bytes, its header says {expected}");
        }

        var bodyEnd = PrefixLength + (int)length;
        Span<byte> hash = stackalloc byte[HashLength];
        SHA256.HashData(file[..bodyEnd], hash);
        if (!hash.SequenceEqual(file[bodyEnd..]))
        {
            throw new InputException($"{source} is corrupt: its SHA-256 checksum does not match its contents");
        }

        try
        {
            return ParsePayload(file[PrefixLength..bodyEnd]);
        }
        catch (Exception ex) when (ex is ArgumentException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            // The checksum matched, so the writer itself wrote this: another build's layout, not a damaged file.
            throw new InputException($"{source} cannot be read by this build: {ex.Message}");
        }
    }

    private static Checkpoint ParsePayload(ReadOnlySpan<byte> payload)
    {
        var position = 0;
        var headerLength = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(payload));
        position += 4;
        var header = ParseHeader(payload.Slice(position, headerLength));
        position += headerLength;
        var checkpoint = new Checkpoint(header);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(payload[position..]);
        position += 4;
        for (var i = 0; i < count; i++)
        {
            var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(payload[position..]);
            position += 2;
            var name = Encoding.UTF8.GetString(payload.Slice(position, nameLength));
            position += nameLength;
            var elements = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(payload[position..]));
            position += 8;
            var bytes = payload.Slice(position, checked(elements * sizeof(float)));
            var values = new float[elements];
            for (var k = 0; k < elements; k++)
            {
                values[k] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(k * 4)..]);
            }

            position += bytes.Length;
            checkpoint.Add(name, values);
        }

        if (position != payload.Length)
        {
            throw new FormatException($"{payload.Length - position} bytes after the last tensor");
        }

        return checkpoint;
    }

    private static byte[] HeaderJson(CheckpointHeader h)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("step", h.Step);
            w.WriteString("algorithm", h.Algorithm);
            w.WriteNumber("workers", h.Workers);
            w.WriteNumber("stages", h.Stages);
            w.WriteNumber("replicas", h.Replicas);
            w.WriteString("model", h.Model);
            w.WriteString("dataset", h.DataSet);
            w.WriteStartArray("layers");
            foreach (var layer in h.Layers)
            {
                w.WriteStartObject();
                w.WriteString("spec", layer.Spec);
                w.WriteNumber("parameters", layer.Parameters);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteString("optimizer", h.Optimizer);
            w.WriteNumber("optimizerTensors", h.OptimizerTensors);
            w.WriteNumber("optimizerStepCount", h.OptimizerStepCount);
            w.WriteBoolean("perWorker", h.PerWorker);
            w.WriteStartArray("skippedSteps");
            foreach (var s in h.SkippedSteps)
            {
                w.WriteNumberValue(s);
            }

            w.WriteEndArray();
            w.WriteStartObject("options");
            foreach (var (key, value) in h.Options.OrderBy(o => o.Key, StringComparer.Ordinal))
            {
                w.WriteString(key, value);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return stream.ToArray();
    }

    private static CheckpointHeader ParseHeader(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        return new CheckpointHeader(
            Step: root.GetProperty("step").GetInt64(),
            Algorithm: root.GetProperty("algorithm").GetString() ?? "",
            Workers: root.GetProperty("workers").GetInt32(),
            Stages: root.GetProperty("stages").GetInt32(),
            Replicas: root.GetProperty("replicas").GetInt32(),
            Model: root.GetProperty("model").GetString() ?? "",
            DataSet: root.GetProperty("dataset").GetString() ?? "",
            Layers: [.. root.GetProperty("layers").EnumerateArray().Select(l => new CheckpointLayer(l.GetProperty("spec").GetString() ?? "", l.GetProperty("parameters").GetInt64()))],
            Optimizer: root.GetProperty("optimizer").GetString() ?? "",
            OptimizerTensors: root.GetProperty("optimizerTensors").GetInt32(),
            OptimizerStepCount: root.GetProperty("optimizerStepCount").GetInt64(),
            PerWorker: root.GetProperty("perWorker").GetBoolean(),
            SkippedSteps: [.. root.GetProperty("skippedSteps").EnumerateArray().Select(s => s.GetInt64())],
            Options: root.GetProperty("options").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""));
    }

    private static void WriteUInt32(Stream stream, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        stream.Write(bytes);
    }
}
