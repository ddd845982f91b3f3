using System.CommandLine;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// What the verbs that run as one plain process, not an MPI job (plan, scaling, speedup), share: bad input is one
/// line on stderr, "mpipipe VERB: message", and the exception's exit code, never a stack trace.
/// </summary>
internal static class PlainVerb
{
    /// <summary>
    /// The command <paramref name="verb"/> with <paramref name="table"/>'s options, a bad value a usage error at parse
    /// time (with the record's own <paramref name="problems"/>), whose action is <paramref name="run"/> on the record
    /// the parse gives.
    /// </summary>
    public static Command Create<TRecord>(string verb, string description, OptionTable<TRecord> table,
        Func<TRecord, IEnumerable<string>> problems, Func<TRecord, int> run)
        where TRecord : new()
    {
        var command = new Command(verb, description);
        table.AddTo(command, problems);
        command.SetAction(parse => Run(verb, () => run(table.Read(parse))));
        return command;
    }

    /// <summary><paramref name="work"/>'s exit code; an <see cref="InputException"/> from it is the verb's one message.</summary>
    public static int Run(string verb, Func<int> work)
    {
        try
        {
            return work();
        }
        catch (InputException ex)
        {
            Console.Error.WriteLine($"mpipipe {verb}: {ex.Message}");
            return ex.ExitCode;
        }
    }
}
