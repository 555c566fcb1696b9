"""The models: dbt builds of the candidate warehouse (``dbt_runner``) and the BG/NBD churn model
fitted between them (``bgnbd`` the model, ``churn_scoring`` the fit on the warehouse's purchases).
"""
