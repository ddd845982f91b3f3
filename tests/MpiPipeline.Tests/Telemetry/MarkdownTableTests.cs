using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Telemetry;

[TestFixture]
public sealed class MarkdownTableTests
{
    [Test]
    public void NumbersAreRightAlignedAndColumnsPadded()
    {
        var table = new MarkdownTable("algorithm", "accuracy", "rounds", "time")
            .AddRow("psgd", "91.2%", "936", "48.1 s")
            .AddRow("local-sgd tau=16", "90.4%", "59", "31.0 s");

        Assert.That(table.ToString(), Is.EqualTo(
            "| algorithm        | accuracy | rounds |   time |\n" +
            "| ---------------- | -------: | -----: | -----: |\n" +
            "| psgd             |    91.2% |    936 | 48.1 s |\n" +
            "| local-sgd tau=16 |    90.4% |     59 | 31.0 s |\n"));
    }

    [Test]
    public void PipesAreEscapedAndLineBreaksFlattened()
    {
        var text = new MarkdownTable("a", "b").AddRow("x|y", "one\ntwo").ToString();
        Assert.That(text, Does.Contain(@"x\|y").And.Contain("one two"));
    }

    [Test]
    public void DashesDoNotMakeANumericColumnText()
    {
        var table = new MarkdownTable("name", "speed-up").AddRow("a", "1.03x").AddRow("b", "-").AddRow("c", "");
        Assert.That(table.IsRightAligned(1), Is.True);
        Assert.That(table.IsRightAligned(0), Is.False);
    }

    [TestCase("12", true)]
    [TestCase("-3.5", true)]
    [TestCase("1,234,567", true)]
    [TestCase("1.5e-3", true)]
    [TestCase("1.03x", true)]
    [TestCase("12 ms", true)]
    [TestCase("4.2 GB/s", true)]
    [TestCase(".5", true)]
    [TestCase("x", false)]
    [TestCase("%", false)]
    [TestCase("cnn", false)]
    [TestCase("tau=4", false)]
    [TestCase("", false)]
    public void RecognizesNumbers(string cell, bool numeric) => Assert.That(MarkdownTable.IsNumeric(cell), Is.EqualTo(numeric));

    [Test]
    public void RowsMustHaveOneCellPerColumn() =>
        Assert.Throws<ArgumentException>(() => new MarkdownTable("a", "b").AddRow("only one"));
}
