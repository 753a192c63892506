using LoraLego.Core.Compute;

namespace LoraLego.Core.Tests.Kernels;

/// <summary>The arrays a merge's worker keeps from module to module: one per use and index, grown, never shared.</summary>
public class KeptArraysTests
{
    [Fact]
    public void A_use_gets_its_array_again_until_it_asks_for_more_and_then_a_quarter_more()
    {
        var kept = new KeptArrays();
        var first = kept.Get<float>("tiles", 1000);
        Assert.Equal(1000, first.Length);
        Assert.Same(first, kept.Get<float>("tiles", 600));
        var grown = kept.Get<float>("tiles", 1001);
        Assert.NotSame(first, grown);
        Assert.Equal(1250, grown.Length);
        Assert.Equal(5000, kept.Get<float>("tiles", 5000).Length);
    }

    [Fact]
    public void Uses_indices_and_element_types_each_have_their_own_array()
    {
        var kept = new KeptArrays();
        var a = kept.Get<float>("sample", 10, 0);
        Assert.NotSame(a, kept.Get<float>("sample", 10, 1));
        Assert.NotSame(a, kept.Get<float>("bracket", 10, 0));
        var longs = kept.Get<long>("sample", 10, 0);
        Assert.Same(a, kept.Get<float>("sample", 10, 0));
        Assert.Same(longs, kept.Get<long>("sample", 10, 0));
    }
}
