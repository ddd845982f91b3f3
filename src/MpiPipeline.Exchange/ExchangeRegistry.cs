using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>An exchange by name: its one-line help and its factory over a group and the node's wait.</summary>
public sealed record ExchangeRegistration(string Name, string Help, Func<Communicator, IdleWait?, IGradientExchange> Create);

/// <summary>The exchanges <c>--exchange</c> accepts; a new one is a class plus one line here.</summary>
public static class ExchangeRegistry
{
    public static IReadOnlyList<ExchangeRegistration> All { get; } =
    [
        new(AllreduceExchange.ExchangeName, "one dense fp32 Allreduce of the whole buffer per round (polled on an oversubscribed node)",
            (group, wait) => new AllreduceExchange(group, wait)),
    ];

    public static string Default => AllreduceExchange.ExchangeName;

    public static ExchangeRegistration Find(string name) =>
        All.FirstOrDefault(e => e.Name == name)
        ?? throw new InputException($"unknown --exchange '{name}'; known: {string.Join(", ", All.Select(e => e.Name))}");
}
