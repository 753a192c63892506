using LoraLego.Core.Recipes;

namespace LoraLego.Core.Tests.Recipes;

public class RecipeValueTests
{
    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(2, 0.5)]
    [InlineData(1, 0.75)]
    [InlineData(4, 0.0)]
    public void A_gradient_is_spread_linearly_from_the_first_layer_to_the_last(int layer, double expected)
    {
        // Two anchors over five layers: 1.0 at layer 0, 0.0 at layer 4, straight in between.
        var gradient = RecipeValue.OfGradient("r:1:1", [1.0, 0.0]);
        Assert.Equal(expected, gradient.At($"model.layers.{layer}.self_attn.q_proj", 5), 12);
    }

    [Fact]
    public void Three_anchors_over_five_layers_put_the_middle_one_at_the_middle_layer()
    {
        var gradient = RecipeValue.OfGradient("r:1:1", [0.0, 1.0, 0.0]);
        Assert.Equal([0.0, 0.5, 1.0, 0.5, 0.0], Enumerable.Range(0, 5).Select(l => gradient.At($"model.layers.{l}.mlp.up_proj", 5)));
    }

    [Fact]
    public void The_first_filter_contained_in_the_key_wins_and_an_entry_without_filter_is_the_default()
    {
        var value = RecipeValue.OfConditions("r:1:1",
            [("q_proj", RecipeValue.Of("r:2:1", 3)), ("self_attn", RecipeValue.Of("r:3:1", 2)), (null, RecipeValue.Of("r:4:1", 1))]);
        Assert.Equal(3, value.At("model.layers.0.self_attn.q_proj", 2));
        Assert.Equal(2, value.At("model.layers.0.self_attn.v_proj", 2));
        Assert.Equal(1, value.At("model.layers.0.mlp.up_proj", 2));
    }

    [Fact]
    public void A_gradient_longer_than_the_layers_is_refused_at_its_position()
    {
        var e = Assert.Throws<LoraException>(() => RecipeValue.OfGradient("r.yaml:7:12", [1, 2, 3]).CheckGradients(2));
        Assert.Equal("r.yaml:7:12", e.Target);
    }
}
