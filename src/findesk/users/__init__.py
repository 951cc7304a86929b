"""End users: the customers who talk to Fin and to human agents."""
