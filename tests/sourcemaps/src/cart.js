// Prices the lines of an order from the catalog.
import { lookupPrice } from "./catalog.js";

export function priceOrder(items) {
  let total = 0;
  for (const item of items) {
    total += lookupPrice(item.sku) * item.qty;
  }
  return total;
}
