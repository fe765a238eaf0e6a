"""The `fulfillment` console command."""
