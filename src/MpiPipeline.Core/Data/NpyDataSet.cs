namespace MpiPipeline.Data;

/// <summary>
/// <c>--dataset npy:DIR</c>, for users coming from Python: <c>x_train.npy</c>, <c>y_train.npy</c>, <c>x_test.npy</c>,
/// <c>y_test.npy</c> as <c>numpy.save</c> writes them (<see cref="NpyFile"/>). x: N samples of any shape, float32,
/// float64 (read as float32) or uint8, channels first for images (N x C x H x W; N x H x W is one channel, as in
/// IDX); y: N integer class indices 0..K-1 (shape (N,) or (N, 1)). The class count is the largest training label + 1;
/// the values are normalized with the training set's statistics (uint8 scaled by 1/255 first).
/// </summary>
internal static class NpyDataSet
{
    public const string Form = "npy:DIR";

    public static DataSetRegistration Registration { get; } = new(
        Form,
        "NumPy arrays in DIR: x_train.npy, y_train.npy, x_test.npy, y_test.npy (numpy.save; x float32/float64/uint8 N x ..., channels first; y integers)",
        (name, _, train) => Load(name, train));

    public static Dataset Load(string name, bool train)
    {
        var folder = FileDataSet.Folder(name, Form);
        return FileDataSet.Load("npy", train, part => Read(folder, part));
    }

    private static RawPart Read(string folder, bool train)
    {
        var part = train ? "train" : "test";
        var xPath = Path.Combine(folder, $"x_{part}.npy");
        var yPath = Path.Combine(folder, $"y_{part}.npy");
        foreach (var path in new[] { xPath, yPath })
        {
            if (!File.Exists(path))
            {
                throw new InputException($"--dataset npy:{folder}: {Path.GetFileName(path)} not found in {folder} (the folder holds x_train.npy, y_train.npy, x_test.npy, y_test.npy)");
            }
        }

        var x = NpyFile.Read(xPath);
        if (x.Descr is not ("<f4" or "<f8" or "|u1"))
        {
            throw new InputException($"{xPath}: samples of dtype '{x.Descr}'; x takes float32 '<f4', float64 '<f8' or uint8 '|u1' (x.astype(numpy.float32))");
        }

        if (x.Shape.Length < 2)
        {
            throw new InputException($"{xPath}: shape ({string.Join(", ", x.Shape)}): x needs one sample per row, N x (sample shape), at least two dimensions");
        }

        int[] shape = x.Shape[1..] is [var rows, var columns] ? [1, rows, columns] : x.Shape[1..];
        if (shape.Any(d => d == 0))
        {
            throw new InputException($"{xPath}: shape ({string.Join(", ", x.Shape)}): a sample holds no values; every dimension must be at least 1");
        }

        var y = NpyFile.Read(yPath);
        if (!NpyFile.IsInteger(y.Descr))
        {
            throw new InputException($"{yPath}: labels of dtype '{y.Descr}'; y takes integers (y.astype(numpy.int64))");
        }

        if (y.Shape is not ([_] or [_, 1]))
        {
            throw new InputException($"{yPath}: shape ({string.Join(", ", y.Shape)}): y holds one class index per sample, shape (N,) or (N, 1)");
        }

        var values = NpyFile.ToIntegers(y);
        var labels = new int[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] >= FileDataSet.MaxClasses)
            {
                throw new InputException($"{yPath}: label {values[i]} at index {i} is outside 0..{FileDataSet.MaxClasses - 1}; labels are class indices 0..K-1");
            }

            labels[i] = (int)values[i];
        }

        var floats = x.Descr == "|u1" ? null : NpyFile.ToFloats(x);
        return new RawPart(xPath, yPath, shape, x.Shape[0], x.Descr == "|u1" ? x.Data : default, floats, labels);
    }
}
