using System.CommandLine;
using System.CommandLine.Parsing;

namespace MpiPipeline.Cli;

/// <summary>
/// The one parser configuration of the program: System.CommandLine's, with response files (`mpipipe train @opts.txt`)
/// kept but made safe. Its own reader lets an unreadable path (`--lr @/proc`, a file without permission) escape as
/// an unhandled exception with a stack trace; here it becomes a usage error naming the file, like a missing one.
/// </summary>
internal static class CommandLineParsing
{
    public static ParserConfiguration Configuration { get; } = Create();

    public static ParseResult Parse(Command command, IReadOnlyList<string> args) => command.Parse(args, Configuration);

    private static ParserConfiguration Create()
    {
        var configuration = new ParserConfiguration();
        var read = configuration.ResponseFileTokenReplacer
            ?? throw new InvalidOperationException("System.CommandLine no longer reads response files by default");
        configuration.ResponseFileTokenReplacer = (string token, out IReadOnlyList<string>? replacement, out string? error) =>
        {
            try
            {
                return read(token, out replacement, out error);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                replacement = null;
                error = $"response file '{token}' cannot be read: {e.Message}";
                return false;
            }
        };
        return configuration;
    }
}
