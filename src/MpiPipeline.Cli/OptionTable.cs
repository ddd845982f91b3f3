using System.CommandLine;
using System.CommandLine.Parsing;
using MpiPipeline.Mpi;

namespace MpiPipeline.Cli;

/// <summary>
/// The command-line options of one options record, one row per flag: the flag, its help, how to read the record's
/// value (<c>get</c>) and how to set it (<c>with</c>). A row's default is <c>get(new TRecord())</c>, so each default
/// is stated once, in the record. Help shows it where it is not the type's zero or null, as it always did.
/// </summary>
internal sealed class OptionTable<TRecord>
    where TRecord : new()
{
    private static readonly TRecord Defaults = new();

    private readonly List<IRow> rows = [];

    private interface IRow
    {
        Option Option { get; }

        TRecord Read(TRecord into, ParseResult parse);

        TRecord Read(TRecord into, CommandResult validating);
    }

    private sealed record Row<T>(Option<T> Option, Func<TRecord, T, TRecord> With) : IRow
    {
        Option IRow.Option => Option;

        public TRecord Read(TRecord into, ParseResult parse) => With(into, parse.GetValue(Option)!);

        public TRecord Read(TRecord into, CommandResult validating) => With(into, OptionTable.ValueOf(validating, Option)!);
    }

    /// <summary>A row whose command-line value is the record's, or converts to and from it in <paramref name="get"/> and <paramref name="with"/>.</summary>
    public Option<T> Add<T>(string flag, string help, Func<TRecord, T> get, Func<TRecord, T, TRecord> with)
    {
        var option = new Option<T>(flag) { Description = help };
        var fallback = get(Defaults);
        if (!EqualityComparer<T>.Default.Equals(fallback, default))
        {
            option.DefaultValueFactory = _ => fallback;
        }

        rows.Add(new Row<T>(option, with));
        return option;
    }

    /// <summary>A row taking one of a few words, each naming one value of the record's property.</summary>
    public Option<string?> Choice<TValue>(
        string flag, string help, IReadOnlyList<(string Name, TValue Value)> choices, Func<TRecord, TValue> get, Func<TRecord, TValue, TRecord> with)
    {
        var option = Add<string?>(flag, help, r => NameOf(choices, get(r)), (r, name) => name is null ? r : with(r, choices.First(c => c.Name == name).Value));
        option.AcceptOnlyFromAmong([.. choices.Select(c => c.Name)]);
        return option;
    }

    /// <summary>The word for a value (null when none names it): help texts that state a default take it from here.</summary>
    public static string? NameOf<TValue>(IReadOnlyList<(string Name, TValue Value)> choices, TValue value) =>
        choices.FirstOrDefault(c => EqualityComparer<TValue>.Default.Equals(c.Value, value)).Name;

    /// <summary>The same table without some flags (compare takes train's rows less those the algorithms own).</summary>
    public OptionTable<TRecord> Without(IEnumerable<string> flags)
    {
        var dropped = flags.ToHashSet();
        var table = new OptionTable<TRecord>();
        table.rows.AddRange(rows.Where(row => !dropped.Contains(row.Option.Name)));
        return table;
    }

    /// <summary>
    /// Adds the options to the command; with <paramref name="problems"/>, also a validator that makes every bad value a
    /// usage error at parse time: a row whose <c>with</c> throws <see cref="InputException"/>, then the record's own problems.
    /// </summary>
    public void AddTo(Command command, Func<TRecord, IEnumerable<string>>? problems = null)
    {
        foreach (var row in rows)
        {
            command.Options.Add(row.Option);
        }

        if (problems is null)
        {
            return;
        }

        command.Validators.Add(result =>
        {
            var record = new TRecord();
            foreach (var row in rows)
            {
                try
                {
                    record = row.Read(record, result);
                }
                catch (InputException ex)
                {
                    result.AddError(ex.Message);
                }
            }

            foreach (var problem in problems(record))
            {
                result.AddError(problem);
            }
        });
    }

    /// <summary>The record the parse gives: each row's value, or the record's default where the flag is absent.</summary>
    public TRecord Read(ParseResult parse) => rows.Aggregate(new TRecord(), (record, row) => row.Read(record, parse));

    /// <summary>True when the command line gave <paramref name="flag"/> (not just its default).</summary>
    public bool Given(ParseResult parse, string flag) => OptionTable.Given(parse, rows.Single(r => r.Option.Name == flag).Option);
}

/// <summary>What option tables and hand-made validators share.</summary>
internal static class OptionTable
{
    /// <summary>True when the command line gave <paramref name="option"/> (not just its default).</summary>
    internal static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>
    /// An option's value inside a command validator: the parsed value when the option was given, else its default
    /// (validators run before defaults are filled in, where GetValue returns default(T)). A value that did not parse
    /// has its own error already; the default stands in for it so the cross-checks add no second one.
    /// </summary>
    internal static T? ValueOf<T>(CommandResult result, Option<T> option)
    {
        var fallback = option.DefaultValueFactory is { } factory ? factory(null!) : default;
        if (result.GetResult(option) is not { Implicit: false })
        {
            return fallback;
        }

        try
        {
            return result.GetValue(option);
        }
        catch (InvalidOperationException)
        {
            return fallback;
        }
    }
}
