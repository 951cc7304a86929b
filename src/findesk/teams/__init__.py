"""Teams: their members, how a team gives out its conversations, agents' presence and capacity."""
