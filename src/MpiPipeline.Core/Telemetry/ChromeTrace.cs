using System.Text;
using System.Text.Json;

namespace MpiPipeline.Telemetry;

/// <summary>What a span of the timeline is; its text form is the event's <c>cat</c> field.</summary>
internal enum TraceCategory
{
    Forward,
    Backward,
    Send,
    RecvWait,
    Allreduce,
    Optimizer,
}

/// <summary>One span of one rank's timeline, in microseconds from the trace's origin.</summary>
internal readonly record struct TraceSpan(string Name, TraceCategory Category, double StartMicroseconds, double DurationMicroseconds, int? MicroBatch = null)
{
    public double EndMicroseconds => StartMicroseconds + DurationMicroseconds;
}

/// <summary>
/// One rank's timeline in the Chrome trace event format (chrome://tracing, Perfetto): complete events
/// (<c>"ph":"X"</c>) with name, category, start and duration in microseconds; each rank is a process row
/// named <c>rank R</c> whose one thread row is named after its role, e.g. <c>stage 1, replica 0</c>.
/// <para>
/// Times count from a common origin: every rank calls <see cref="ResetOrigin"/> right after the same barrier, so
/// the rows line up to within the barrier's skew (clocks of different nodes are not otherwise compared).
/// Each rank records its own spans, <see cref="Serialize"/>s them to a compact string; the strings are gathered
/// (by MPI, elsewhere) and <see cref="Merge"/> / <see cref="WriteMerged"/> turn them into the one trace file.
/// </para>
/// </summary>
internal sealed class ChromeTrace
{
    private readonly List<TraceSpan> spans = [];
    private readonly TimeProvider clock;
    private long originTimestamp;

    public ChromeTrace(int rank, string rowName, TimeProvider? clock = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        Rank = rank;
        RowName = rowName;
        this.clock = clock ?? TimeProvider.System;
        originTimestamp = this.clock.GetTimestamp();
    }

    public int Rank { get; }

    /// <summary>The name of this rank's row, e.g. <c>stage 1, replica 0</c>.</summary>
    public string RowName { get; }

    public IReadOnlyList<TraceSpan> Spans => spans;

    /// <summary>Makes now time 0 (call on every rank right after a barrier).</summary>
    public void ResetOrigin() => originTimestamp = clock.GetTimestamp();

    /// <summary>Microseconds from the origin to now.</summary>
    public double Now() => (clock.GetTimestamp() - originTimestamp) * 1e6 / clock.TimestampFrequency;

    /// <summary>Microseconds from the origin to a timestamp of this trace's clock (Stopwatch.GetTimestamp for the system clock).</summary>
    public double At(long timestamp) => (timestamp - originTimestamp) * 1e6 / clock.TimestampFrequency;

    public void Add(TraceSpan span)
    {
        if (!double.IsFinite(span.StartMicroseconds) || !double.IsFinite(span.DurationMicroseconds) || span.DurationMicroseconds < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(span), span, "a span needs a finite start and a finite duration >= 0");
        }

        spans.Add(span);
    }

    public void Add(string name, TraceCategory category, double startMicroseconds, double durationMicroseconds, int? microBatch = null) =>
        Add(new TraceSpan(name, category, startMicroseconds, durationMicroseconds, microBatch));

    /// <summary>The <c>cat</c> text of each category, in <see cref="TraceCategory"/>'s order.</summary>
    private static readonly string[] CategoryNames = ["forward", "backward", "send", "recv-wait", "allreduce", "optimizer"];

    public static string CategoryName(TraceCategory category) => CategoryNames[(int)category];

    /// <summary>
    /// This rank's spans as one compact JSON string, for gathering to rank 0:
    /// <c>{"rank":R,"row":"...","spans":[["F3","forward",ts,dur,3],...]}</c> (the micro-batch only when known).
    /// </summary>
    public string Serialize()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("rank", Rank);
            json.WriteString("row", RowName);
            json.WriteStartArray("spans");
            foreach (var span in spans)
            {
                json.WriteStartArray();
                json.WriteStringValue(span.Name);
                json.WriteStringValue(CategoryName(span.Category));
                json.WriteNumberValue(Round(span.StartMicroseconds));
                json.WriteNumberValue(Round(span.DurationMicroseconds));
                if (span.MicroBatch is { } i)
                {
                    json.WriteNumberValue(i);
                }

                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The inverse of <see cref="Serialize"/>.</summary>
    public static ChromeTrace Deserialize(string serialized)
    {
        try
        {
            using var document = JsonDocument.Parse(serialized);
            var root = document.RootElement;
            var trace = new ChromeTrace(root.GetProperty("rank").GetInt32(), root.GetProperty("row").GetString() ?? "");
            foreach (var item in root.GetProperty("spans").EnumerateArray())
            {
                var fields = item.EnumerateArray().ToArray();
                var category = ParseCategory(fields[1].GetString());
                int? microBatch = fields.Length > 4 ? fields[4].GetInt32() : null;
                trace.Add(fields[0].GetString() ?? "", category, fields[2].GetDouble(), fields[3].GetDouble(), microBatch);
            }

            return trace;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            throw new FormatException($"not a serialized rank trace: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The final trace from every rank's <see cref="Serialize"/> output, ordered by rank:
    /// <c>{"traceEvents":[...],"displayTimeUnit":"ms"}</c> with, per rank, <c>process_name</c> "rank R",
    /// <c>process_sort_index</c> R, <c>thread_name</c> (the row name), then its complete events.
    /// </summary>
    public static string Merge(IEnumerable<string> serializedRanks)
    {
        var traces = serializedRanks.Select(Deserialize).OrderBy(t => t.Rank).ToList();
        for (var k = 1; k < traces.Count; k++)
        {
            if (traces[k].Rank == traces[k - 1].Rank)
            {
                throw new InvalidOperationException($"two traces for rank {traces[k].Rank}");
            }
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("traceEvents");
            foreach (var trace in traces)
            {
                WriteMetadata(json, "process_name", trace.Rank, "name", $"rank {trace.Rank}");
                WriteMetadata(json, "process_sort_index", trace.Rank, "sort_index", trace.Rank);
                WriteMetadata(json, "thread_name", trace.Rank, "name", trace.RowName);
                foreach (var span in trace.spans)
                {
                    json.WriteStartObject();
                    json.WriteString("name", span.Name);
                    json.WriteString("cat", CategoryName(span.Category));
                    json.WriteString("ph", "X");
                    json.WriteNumber("pid", trace.Rank);
                    json.WriteNumber("tid", 0);
                    json.WriteNumber("ts", Round(span.StartMicroseconds));
                    json.WriteNumber("dur", Round(span.DurationMicroseconds));
                    if (span.MicroBatch is { } i)
                    {
                        json.WriteStartObject("args");
                        json.WriteNumber("micro_batch", i);
                        json.WriteEndObject();
                    }

                    json.WriteEndObject();
                }
            }

            json.WriteEndArray();
            json.WriteString("displayTimeUnit", "ms");
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Writes <see cref="Merge"/>'s trace to <paramref name="path"/> atomically: a temporary file beside it, then a
    /// rename, so a reader never sees half a trace and a failed write leaves an earlier file whole.
    /// </summary>
    public static void WriteMerged(string path, IEnumerable<string> serializedRanks)
    {
        AtomicFile.WriteAllText(path, Merge(serializedRanks));
    }

    /// <summary>
    /// The bubble one rank saw in the window [start, end): 1 - busy / (end - start), where busy is the time covered
    /// by its forward and backward spans (their union, clipped to the window). Compare with
    /// <see cref="Pipeline.PipelineTiming.BubbleFraction"/>.
    /// </summary>
    public static double MeasuredBubble(IEnumerable<TraceSpan> spansOfOneRank, double windowStartMicroseconds, double windowEndMicroseconds)
    {
        var window = windowEndMicroseconds - windowStartMicroseconds;
        if (!(window > 0) || !double.IsFinite(window))
        {
            throw new ArgumentOutOfRangeException(nameof(windowEndMicroseconds), window, "the window must end after it starts");
        }

        var compute = spansOfOneRank
            .Where(s => s.Category is TraceCategory.Forward or TraceCategory.Backward)
            .Select(s => (Start: Math.Max(s.StartMicroseconds, windowStartMicroseconds), End: Math.Min(s.EndMicroseconds, windowEndMicroseconds)))
            .Where(s => s.End > s.Start)
            .OrderBy(s => s.Start);

        double busy = 0, coveredUntil = windowStartMicroseconds;
        foreach (var (start, end) in compute)
        {
            var from = Math.Max(start, coveredUntil);
            if (end > from)
            {
                busy += end - from;
                coveredUntil = end;
            }
        }

        return 1 - busy / window;
    }

    private static TraceCategory ParseCategory(string? text) => Array.IndexOf(CategoryNames, text) is var index and >= 0
        ? (TraceCategory)index
        : throw new FormatException($"unknown trace category '{text}'");

    private static void WriteMetadata(Utf8JsonWriter json, string name, int rank, string argument, string value)
    {
        json.WriteStartObject();
        json.WriteString("name", name);
        json.WriteString("ph", "M");
        json.WriteNumber("pid", rank);
        json.WriteNumber("tid", 0);
        json.WriteStartObject("args");
        json.WriteString(argument, value);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteMetadata(Utf8JsonWriter json, string name, int rank, string argument, int value)
    {
        json.WriteStartObject();
        json.WriteString("name", name);
        json.WriteString("ph", "M");
        json.WriteNumber("pid", rank);
        json.WriteStartObject("args");
        json.WriteNumber(argument, value);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Nanosecond resolution is plenty; shorter numbers keep the file small.</summary>
    private static double Round(double microseconds) => Math.Round(microseconds, 3, MidpointRounding.AwayFromZero);
}
