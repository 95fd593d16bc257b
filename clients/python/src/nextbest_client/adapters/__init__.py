"""Agent-framework adapters; each module imports its framework, installed with an extra.

- :mod:`nextbest_client.adapters.langgraph` — a LangGraph decision node and router.
- :mod:`nextbest_client.adapters.langchain` — LangChain tools (``[langchain]``).
- :mod:`nextbest_client.adapters.crewai` — CrewAI tools (``[crewai]``).
- :mod:`nextbest_client.adapters.autogen` — AutoGen ``FunctionTool``s (see the README).
"""
