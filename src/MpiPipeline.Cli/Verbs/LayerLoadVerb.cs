using System.CommandLine;
using MpiPipeline.Layerwise;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe layer-load</c> (hidden): a copy of the chain that <c>mpipipe plan</c> is timing, stepped in a process of its
/// own as another rank would (<see cref="ChainLoad"/>); the chain comes on standard input, and the process ends when
/// its input closes.
/// </summary>
internal static class LayerLoadVerb
{
    internal static Command Create()
    {
        var command = new Command(ChainLoad.Verb, "The layer-time measurement's load: steps the chain given on standard input until it closes (started by mpipipe plan).")
        {
            Hidden = true,
        };
        command.SetAction(_ => PlainVerb.Run(ChainLoad.Verb, () => ChainLoad.Run(Console.In, Console.Out)));
        return command;
    }
}
