"""④ The outbox: deliveries stored before they are sent, and the workers that send them."""
