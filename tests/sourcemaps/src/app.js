// The entry: reads an order and prices it; a bad SKU throws from cart.js.
import { priceOrder } from "./cart.js";

export function checkout(order) {
  const total = priceOrder(order.items);
  return { id: order.id, total };
}

checkout({ id: 1, items: [{ sku: "apple", qty: 2 }] });
