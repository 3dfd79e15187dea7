"""The catalog: products by category (the counts matter: most categories end with a partial page)."""

from __future__ import annotations

PRODUCTS: dict[str, list[tuple[str, float]]] = {
    "lamps": [
        ("Arc floor lamp", 129.0),
        ("Brass desk lamp", 59.0),
        ("Paper pendant", 35.0),
        ("Clip-on reading light", 19.5),
        ("Mushroom table lamp", 74.0),
        ("Tripod lamp", 99.0),
        ("Wall sconce", 45.0),
        ("Bedside touch lamp", 29.0),
        ("Globe pendant", 65.0),
        ("LED strip kit", 24.0),
    ],
    "chairs": [
        ("Oak dining chair", 149.0),
        ("Bentwood chair", 119.0),
        ("Lounge chair", 349.0),
        ("Folding chair", 39.0),
        ("Office chair", 229.0),
        ("Bar stool", 89.0),
        ("Rocking chair", 279.0),
    ],
    "rugs": [
        ("Jute rug", 89.0),
        ("Wool kilim", 199.0),
        ("Shaggy rug", 129.0),
        ("Runner", 59.0),
        ("Round rug", 99.0),
        ("Washable rug", 79.0),
        ("Outdoor rug", 69.0),
        ("Sheepskin", 109.0),
        ("Cowhide", 299.0),
    ],
    "mugs": [
        ("Stoneware mug", 14.0),
        ("Enamel mug", 12.0),
        ("Espresso cup", 9.0),
        ("Travel mug", 24.0),
    ],
}
